"""Structured pruning of the UNet that removes computation, measured against the unpruned model.

sensitivity (what each unit is worth) -> allocation (which units go, to a parameter target) -> surgery
(smaller tensors, dropped blocks) -> optional recovery (distillation from the unpruned teacher).
"""
