"""Small shared helpers (process pools with progress, console)."""
