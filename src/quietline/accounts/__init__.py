"""quietline.accounts."""
