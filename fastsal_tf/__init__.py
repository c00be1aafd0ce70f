"""FastSal visual-saliency prediction in TensorFlow / Keras 3, exportable to LiteRT."""

__version__ = "0.1.0"


def __getattr__(name):
    """Lazy exports, so that `import fastsal_tf` stays light (no TensorFlow until a model is loaded)."""
    if name == "load_model":
        from fastsal_tf import api

        return api.load_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
