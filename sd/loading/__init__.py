"""Reading and writing checkpoints: original single files and diffusers folders."""
