"""quietline.registry."""
