"""Benchmarks that need the whole stack at once (orchestrator, gateway, fake provider).

They live in the package, not only in `bench/`, because `corral bench fleet` runs them;
timings are reported, never asserted.
"""
