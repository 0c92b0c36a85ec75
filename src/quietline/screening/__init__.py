"""quietline.screening."""
