"""The Python API: `load_model(...)` → SaliencyPredictor with `predict_map(image)`.

    import fastsal_tf
    model = fastsal_tf.load_model()                    # the shipped FastSal-A
    prob = model.predict_map("photo.jpg")              # (H, W) float64 at the original size, sums to 1
    shown = model.predict_display("photo.jpg")         # (H, W) uint8, maximum 255
"""

from __future__ import annotations

import os
import pathlib

from fastsal_tf.predict.errors import ImageError, ModelNotFoundError, SaliencyWarning
from fastsal_tf.predict.images import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE
from fastsal_tf.predict.predictor import SaliencyPredictor

__all__ = ["ImageError", "ModelNotFoundError", "SaliencyPredictor", "SaliencyWarning", "load_model",
           "SHIPPED_MODELS", "MODEL_SUFFIXES"]

ASSETS_DIR = pathlib.Path(__file__).resolve().parent / "assets"
# Names of the models shipped in fastsal_tf/assets/.
SHIPPED_MODELS = {
    "default": "fastsal_a.keras",
    "default-a": "fastsal_a.keras",
    "default-c": "fastsal_c.keras",
    "default-int8": "fastsal_a_int8.tflite",
}
MODEL_SUFFIXES = {".keras": "keras", ".tflite": "litert", ".pth": "torch", ".pt": "torch"}


def _how_to_give_a_model() -> str:
    return ("Give a model file instead: `fastsal predict --model PATH ...` or `fastsal_tf.load_model(PATH)`, where "
            "PATH is a .keras model, a LiteRT .tflite file or an authors' FastSal .pth checkpoint (imported on the "
            "fly; or convert it once with `fastsal import-torch CHECKPOINT.pth --out model.keras`).")


def resolve_model(spec) -> tuple[pathlib.Path, str]:
    """(file, backend kind) for a model spec: a shipped name (see SHIPPED_MODELS) or a file path.
    Raises ModelNotFoundError when the file is not there, ValueError for an unknown file type."""
    text = os.fspath(spec)
    if text.lower() in SHIPPED_MODELS:
        path = ASSETS_DIR / SHIPPED_MODELS[text.lower()]
        if not path.is_file():
            raise ModelNotFoundError(f"the shipped model {text!r} ({path.name}) is not in this install (looked in "
                                     f"{ASSETS_DIR}). {_how_to_give_a_model()}")
        return path, MODEL_SUFFIXES[path.suffix]
    path = pathlib.Path(text)
    kind = MODEL_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        names = ", ".join(sorted(SHIPPED_MODELS))
        raise ValueError(f"unsupported model {text!r}: give a .keras, .tflite or .pth file, or one of {names}")
    if not path.is_file():
        raise ModelNotFoundError(f"model file not found: {text}. {_how_to_give_a_model()}")
    return path, kind


def load_model(spec="default", *, resize: str = "stretch", blur: float = 0.0, center_bias: float = 0.0,
               center_bias_sigma: float = 0.25, max_side: int | None = DEFAULT_MAX_SIDE,
               max_pixels: int | None = DEFAULT_MAX_PIXELS, input_size: tuple[int, int] | None = None,
               num_threads: int | None = None, variant: str | None = None) -> SaliencyPredictor:
    """Loads a FastSal model for prediction; the backend follows the file type.

    spec: "default" (the shipped FastSal-A, fastsal_tf/assets/fastsal_a.keras), "default-c" (FastSal-C),
      "default-int8" (the shipped int8 LiteRT model), or a path: a .keras file (Keras), a .tflite file
      (LiteRT, run with ai_edge_litert), or an authors' .pth/.pt checkpoint (imported on the fly, variant
      A or C detected from its keys; `variant` checks it).
    input_size: (height, width), multiples of 32, for a .pth import or a .keras model with a flexible input
      (default 192x256); fixed-size models run at their own size.
    num_threads: LiteRT threads per interpreter (default: all cores).
    The other options are the SaliencyPredictor settings (resize policy, blur, centre bias, size caps).
    Raises ModelNotFoundError (a FileNotFoundError) when the model is not there.
    """
    path, kind = resolve_model(spec)
    if kind == "litert":
        from fastsal_tf.predict.backends import LiteRTBackend

        if input_size is not None:
            raise ValueError(f"{path}: a .tflite model has a fixed input size; input_size does not apply")
        backend = LiteRTBackend(path, num_threads)
        resample = "bilinear"
    else:
        from fastsal_tf.predict.backends import KerasBackend

        if kind == "keras":
            import keras

            import fastsal_tf.models.layers  # noqa: F401  (registers the custom layers)

            model = keras.saving.load_model(path, compile=False)
        else:
            from fastsal_tf.models.fastsal import check_input_shape
            from fastsal_tf.weights.torch_import import import_torch_checkpoint

            height, width = input_size or (192, 256)
            check_input_shape((height, width, 3))
            model = import_torch_checkpoint(path, variant, (height, width, 3), heads=("prob",))
            if model.name == "fastsal_hint":
                raise ValueError(f"{path}: a hint-pretraining checkpoint, not a saliency model (give FastSal-A or -C)")
            input_size = None
        backend = KerasBackend(model, input_size, str(path))
        resample = preprocessing_resample(model)
    return SaliencyPredictor(backend, resize=resize, blur=blur, center_bias=center_bias,
                             center_bias_sigma=center_bias_sigma, max_side=max_side, max_pixels=max_pixels,
                             source=str(path), resample=resample)


def preprocessing_resample(model) -> str:
    """The image resampling a Keras model was trained with: "lanczos" for the authors' weights (ImageNet
    normalisation; their predict script resizes with PIL LANCZOS), else "bilinear" (our pipeline)."""
    try:
        normalization = model.get_layer("normalize").normalization
    except ValueError:
        return "bilinear"
    return "lanczos" if normalization == "imagenet" else "bilinear"
