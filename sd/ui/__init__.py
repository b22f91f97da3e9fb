"""The web UI (python -m sd ui): a Gradio page over the GIF driver."""
