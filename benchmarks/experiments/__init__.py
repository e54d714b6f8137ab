"""One-off experiments: the runs behind choices made once (not run by ``benchmarks.run``).

Each is ``python -m benchmarks.experiments.NAME``; what they found is in
docs/benchmarks.md. They share :mod:`benchmarks.common` with the suites.
"""
