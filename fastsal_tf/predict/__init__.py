"""Saliency prediction for any image: decoding, mapping back to the original size, display maps and
overlays, the decisions taken from a map (crops and the attention centre, decisions.py), and the batch jobs
behind `fastsal predict`, `fastsal crop` and `fastsal center`; the models run through fastsal_tf.runtime
backends. The entry point is `fastsal_tf.load_model(...)` (fastsal_tf.api)."""

from fastsal_tf.predict.errors import ImageError, ModelNotFoundError, SaliencyWarning
from fastsal_tf.predict.postprocess import display_map, overlay
from fastsal_tf.predict.predictor import SaliencyPredictor

__all__ = ["ImageError", "ModelNotFoundError", "SaliencyPredictor", "SaliencyWarning", "display_map", "overlay"]
