"""Benchmarks (`make bench`): each bench_<name>.py has main(); figures are ratios against a
baseline measured in the same run, because this machine is shared and noisy."""
