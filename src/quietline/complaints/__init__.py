"""quietline.complaints."""
