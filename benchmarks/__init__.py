"""Benchmarks, each run from the repository root as a module: ``python -m benchmarks.bench_binning``."""
