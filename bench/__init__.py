"""Floorview's benchmarks: ``make bench`` (or ``python bench/run.py``) prints the figures."""
