"""Package data: the style sheet, icons and desktop file."""
