"""quietline.callerauth."""
