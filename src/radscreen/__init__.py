"""radscreen: age, sex and osteoporosis models on chest radiographs and CT."""

__version__ = "0.1.0"
