"""Stable Diffusion from scratch: pipeline, loading, GIF driver and CLI."""
