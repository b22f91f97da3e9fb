"""Attention, feed-forward blocks, the CLIP tokenizer and text encoder."""
