"""The GIF driver: keyframed prompts to smooth, reproducible animations."""
