"""Benchmarks run by hand, not by the test suite.

``python -m bench.forwarding`` measures the aggregator against the official
NATS Streaming tools (see its docstring and the README's Benchmark section).
"""
