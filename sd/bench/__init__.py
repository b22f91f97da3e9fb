"""Benchmarks: ours and the reference run side by side in one process; medians and ratios, never asserts."""
