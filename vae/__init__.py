"""The KL autoencoder of Stable Diffusion (names follow ldm's autoencoder / diffusionmodules)."""
