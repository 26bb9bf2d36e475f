"""Scores of predictions against targets: scikit-learn scores on arrays and torchmetrics metrics updated in training."""
