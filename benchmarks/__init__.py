"""The performance suite: ``python -m benchmarks [--quick] [--only NAME ...]``.

Every figure is measured in one run against a baseline measured in the same run (a ratio), or
is a count; nothing here is a timed test assert. Results are printed as a table and written to
``benchmarks/results/latest.json`` and ``latest.md``; a missed target is shown as missed.
"""
