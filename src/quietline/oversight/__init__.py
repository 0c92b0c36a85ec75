"""quietline.oversight."""
