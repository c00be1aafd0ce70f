"""FastSal visual-saliency prediction in TensorFlow / Keras 3, exportable to LiteRT."""

__version__ = "0.1.0"

# Lazy exports from fastsal_tf.api, so that `import fastsal_tf` stays light (no TensorFlow until a model is
# loaded): the entry point, the predictor and the errors and warnings it raises.
_API_NAMES = ("load_model", "SaliencyPredictor", "ImageError", "ModelNotFoundError", "SaliencyWarning")
__all__ = list(_API_NAMES)


def __getattr__(name):
    if name in _API_NAMES:
        from fastsal_tf import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
