"""quietline.demo."""
