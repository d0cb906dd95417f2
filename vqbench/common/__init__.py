"""Helpers every layer uses: errors, validators, atomic writes, progress bars, malloc tuning."""
