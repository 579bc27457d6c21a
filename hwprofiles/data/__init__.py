"""Catalogue data files (TOML), loaded by hwprofiles.presets; no code lives here."""
