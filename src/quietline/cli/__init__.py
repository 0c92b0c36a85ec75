"""quietline.cli."""
