"""Backbones (timm), heads, fusion, losses, transfer and the one LightningModule for every task."""
