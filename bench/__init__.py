"""The benchmark suite of mfa_middleware: `python -m bench.run` (or `make bench`).

Each section lives in its own module and runs in its own process; `bench.run` collects their
figures, prints one table and writes `bench/results/latest.json`. See `bench/README.md`.
"""
