"""Entry-point logic behind train.py and eval.py."""
