"""Pure model layer: no textual, and no torch on the read path."""
