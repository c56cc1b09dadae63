"""Throughput and memory of auroradask against today's workflow and the hardware's ceiling.

Run ``python -m benchmarks --quick --json results.json``; see benchmarks/README.md.
"""
