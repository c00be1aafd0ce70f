"""The Python API: `load_model(...)` → SaliencyPredictor with `predict_map(image)`.

    import fastsal_tf
    model = fastsal_tf.load_model()                    # the shipped FastSal-A
    prob = model.predict_map("photo.jpg")              # (H, W) float64 at the original size, sums to 1
    shown = model.predict_display("photo.jpg")         # (H, W) uint8, maximum 255
"""

from __future__ import annotations

from fastsal_tf.predict.errors import ImageError, ModelNotFoundError, SaliencyWarning
from fastsal_tf.predict.images import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE
from fastsal_tf.predict.predictor import SaliencyPredictor
from fastsal_tf.runtime.resolve import MODEL_SUFFIXES, SHIPPED_MODELS, load_backend

__all__ = ["ImageError", "ModelNotFoundError", "SaliencyPredictor", "SaliencyWarning", "load_model",
           "SHIPPED_MODELS", "MODEL_SUFFIXES"]


def load_model(spec="default", *, resize: str = "stretch", blur: float = 0.0, center_bias: float = 0.0,
               center_bias_sigma: float = 0.25, max_side: int | None = DEFAULT_MAX_SIDE,
               max_pixels: int | None = DEFAULT_MAX_PIXELS, input_size: tuple[int, int] | None = None,
               num_threads: int | None = None, variant: str | None = None,
               backend: str = "auto", multiscale: bool = False, flip: bool = False) -> SaliencyPredictor:
    """Loads a FastSal model for prediction; the backend follows the file type.

    spec: "default" (the shipped FastSal-A, trained at 352×480, as an fp32 LiteRT model,
      fastsal_tf/assets/fastsal_a_352x480_fp32.tflite: the Keras model's maps without TensorFlow),
      "default-keras" (the same FastSal-A as a Keras model), "default-int8" (it as int8 LiteRT), "fast",
      "fast-keras", "fast-int8" (the first shipped FastSal-A, 192×256, OSIE only: over twice the
      throughput, less accurate on photos from other sets), "default-c" (FastSal-C, Keras, 192×256), or a path:
      a .keras file (Keras), a .tflite file (LiteRT, run with ai_edge_litert), an authors' .pth/.pt checkpoint
      (imported on the fly, variant A or C detected from its keys; `variant` checks it) or a SavedModel
      directory (fastsal_tf.runtime).
    input_size: (height, width), multiples of 32, for a .pth import or a .keras model with a flexible input
      (default 192x256); fixed-size models run at their own size.
    num_threads: LiteRT threads per interpreter, or OpenVINO threads (default: all cores).
    backend: "auto" (LiteRT for .tflite, Keras for .keras / .pth), "litert", "openvino" (a .tflite run by
      the optional OpenVINO package) or "keras" (fastsal_tf.runtime.resolve.runtime_for).
    multiscale: run the FastSal at its own size and at 1.5× it and average the two probability maps
      (fastsal_tf.models.multiscale; the input frame is the larger size: 192x256 + 288x384 for "fast",
      352x480 + 512x704 for "default"); about 3x the compute, sharper maps (NSS up; README, "--multiscale",
      has the scores). It runs the Keras model (a shipped LiteRT name means its Keras source), so it needs
      TensorFlow.
    flip: test-time flip averaging: each pass also runs on the mirrored image and its map is mirrored back,
      twice the compute (alone or with multiscale; Keras, as multiscale; README, "--flip", has the scores).
    The other options are the SaliencyPredictor settings (resize policy, blur, centre bias, size caps).
    Raises ModelNotFoundError (a FileNotFoundError) when the model is not there.
    """
    backend, ref = load_backend(spec, input_size=input_size, num_threads=num_threads, variant=variant,
                                backend=backend, multiscale=multiscale, flip=flip)
    resample = "bilinear"
    if ref.kind in ("keras", "torch"):
        from fastsal_tf.models.fastsal import FastSal, preprocessing_resample

        try:
            resample = preprocessing_resample(backend.model)
        except ValueError:  # a multi-scale FastSal (the network is one of its layers), else our pipeline's
            networks = [layer for layer in backend.model.layers if isinstance(layer, FastSal)]
            resample = preprocessing_resample(networks[0]) if networks else resample
    return SaliencyPredictor(backend, resize=resize, blur=blur, center_bias=center_bias,
                             center_bias_sigma=center_bias_sigma, max_side=max_side, max_pixels=max_pixels,
                             source=str(ref.path), resample=resample)
