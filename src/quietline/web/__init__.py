"""quietline.web."""
