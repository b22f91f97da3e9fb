"""The conditional UNet of Stable Diffusion (names follow ldm's openaimodel.py)."""
