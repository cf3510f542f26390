"""Benchmarks of ganforge: every file a script, run from the repository root as a module,

    python -m bench.NAME [ARGS]          # python -m bench.NAME --smoke: the smallest configuration

What they share (the machine description, mean and standard error, image conversions, the real
IDX splits, reference-loop timing, the --smoke mode) is in bench/common.py.
"""
