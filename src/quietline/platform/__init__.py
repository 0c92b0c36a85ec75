"""quietline.platform."""
