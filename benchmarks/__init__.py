"""Reproducible benchmarks of edgekit (not part of the installed package)."""
