"""FastSal visual-saliency prediction in TensorFlow / Keras 3, exportable to LiteRT."""

__version__ = "0.1.0"
