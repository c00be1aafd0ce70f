"""The model runtime: which model a name or path means (`resolve`), how to run it (`Backend` and its
Keras / SavedModel / LiteRT subclasses) and which of its outputs is the saliency map (`select_output`).

Light on import (no TensorFlow); the backends import their runtime when they are built. A new backend
(e.g. OpenVINO) is one more `Backend` subclass plus one suffix in `resolve.MODEL_SUFFIXES`."""
