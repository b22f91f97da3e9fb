"""Training scripts for the embedded small model: one per stage, resumable, single-process or torchrun."""
