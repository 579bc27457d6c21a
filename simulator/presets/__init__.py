"""Preset data files (TOML), loaded by simulator.models_catalogue; no code lives here."""
