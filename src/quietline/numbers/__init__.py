"""quietline.numbers."""
