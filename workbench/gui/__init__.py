"""The Qt layer: widgets that adapt the headless core. The only package importing Qt."""
