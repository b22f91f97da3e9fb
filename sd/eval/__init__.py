"""Judging generated images: an attribute classifier, prompt-adherence scores, sample grids."""
