"""Inference: preprocessing onto the network grid, prediction, post-processing, mapping back."""
