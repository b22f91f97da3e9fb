"""The original U-Net (Ronneberger et al. 2015) segmenting the generated shapes: `python -m unet.segmentation.train`."""
