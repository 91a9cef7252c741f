"""Benchmarks that ``playhead bench`` runs: viewer-side quality of experience."""
