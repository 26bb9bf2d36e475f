"""Synthetic subjects projected from a real chest CT (the embedded demo data)."""
