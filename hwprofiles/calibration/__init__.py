"""Calibration: measure a real machine with torch micro-benchmarks and save it as a profile.

`run.calibrate` measures and writes a profile directory; `loader.load_calibrated_profile`
turns one into a `HardwareProfile`; `store` knows where saved profiles live. Importing this
package is cheap (torch, pandas and scipy are imported by the modules that need them).
"""
