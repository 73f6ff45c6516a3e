"""Package data: icons and the desktop file."""
