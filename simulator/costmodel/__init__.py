"""The transformer cost model: FLOPs, bytes, memory and communication per operation.

Both engines (the closed-form model in `analysis` and the SimPy engine in `simulator.des`)
consume these functions; no formula is written twice.
"""
