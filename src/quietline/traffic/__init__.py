"""quietline.traffic."""
