"""Benchmarks of rustybt_nb (run ``python benchmarks/bench_engine.py``; see README.md)."""
