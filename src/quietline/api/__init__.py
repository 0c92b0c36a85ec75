"""quietline.api."""
