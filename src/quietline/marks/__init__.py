"""quietline.marks."""
