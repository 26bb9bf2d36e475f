"""Embedding audits: what age, sex and other attributes a model's embeddings reveal."""
