"""modeltree: look inside PyTorch model files without running them."""

__version__ = "0.1.0"
