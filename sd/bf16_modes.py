"""The --bf16-compute modes (what they mean: sd/bf16_compute.py), kept apart from that module, which imports
torch, so that --help lists them at once."""

MODES = ("auto", "native", "fp32")
