"""The offline training data: captioned 64x64 images of coloured shapes, generated from a seed."""
