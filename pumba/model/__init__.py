"""The PUMBA network, its loss and training on synthetic data."""
