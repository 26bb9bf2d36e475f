"""Manifests: one row per image in one schema, built from DICOM folders or public-dataset CSVs."""
