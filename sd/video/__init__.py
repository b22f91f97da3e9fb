"""Video inputs: frames of a clip as per-frame init images."""
