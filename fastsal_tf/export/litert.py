"""Export FastSal Keras models to LiteRT (.tflite): fp32, fp16, dynamic-range int8 and full int8, with a
parity report, embedded JSON metadata and a builtin-ops-only guarantee.

Signature of an exported model (signature key "serving_default"; the tensors carry the same names):

  input   "image"            [1, H, W, 3] uint8 RGB 0–255 (input_dtype="uint8", default) or float32 RGB
                             0–255 (input_dtype="float32"). Fixed batch 1 and fixed H, W (multiples of 32):
                             resize (stretch) the picture to W×H first; normalisation happens inside.
  outputs "saliency_map"     [1, H, W, 1] sigmoid(logits) in [0, 1]; float32, or with map_dtype="uint8"
                             round(255·map) as uint8 (tensor quantisation scale 1/255, zero point 0).
          "probability_map"  [1, H, W, 1] float32 softmax of the logits over all H·W pixels (sums to 1).
          "logits"           [1, H, W, 1] float32 raw scores (optional; for checks against the authors').

Whatever the mode, the sigmoid / pixel softmax run in float32: in an int8 model the network body is int8
and its logits are dequantised before the float tail (a softmax over ~49k pixels quantised to int8 with
output scale 1/256 would round every pixel to zero). The int8 calibration measures the activation
ranges over all the representative images itself and bias-corrects the int8 convolutions (`_quantize_int8`).
A narrow head convolution after the last pixel shuffle (FastSal-A's) is exported in front of it, at half
resolution (fastsal_tf.export.subpixel; same values, ~1 ms less in int8); parity is checked against the
Keras model as it is.
`export_tflite` refuses models that need Flex or custom ops, checks parity against the Keras model (bounds
in PARITY_BOUNDS) and writes the .tflite and its `<name>.parity.json` report only when every check has
passed (atomically: temp file + os.replace).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import re

import numpy as np

from fastsal_tf.common.console import quiet_stderr
from fastsal_tf.common.files import write_all_atomic
from fastsal_tf.export.calibration import quantize_int8
from fastsal_tf.export.flatbuffer import add_signature_and_metadata, check_graph, read_metadata
from fastsal_tf.export.graph import logits_model, model_description, trace_serving
from fastsal_tf.export.parity import parity_report, reference_outputs, run_tflite
from fastsal_tf.export.spec import (DEFAULT_INPUT_SIZE, INPUT_DTYPES, INPUT_NAME, MAP_DTYPES, METADATA_FORMAT_VERSION,
                                    MODES, OUTPUT_NAMES, ExportError, ParityError, UnsupportedOpsError)
from fastsal_tf.export.subpixel import fold_head_into_shuffle

_NOT_BUILTIN = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")


@dataclasses.dataclass
class ExportResult:
    path: pathlib.Path
    parity_path: pathlib.Path
    mode: str
    size_bytes: int
    ops: list
    metadata: dict
    parity: dict


# ----------------------------------------------------------------------------------------- arguments

def check_input_size(input_size):
    """(height, width) → tuple of two positive multiples of 32, else ExportError."""
    try:
        height, width = (int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ExportError(f"input_size must be (height, width), got {input_size!r}") from None
    if height <= 0 or width <= 0 or height % 32 or width % 32:
        raise ExportError(f"input size must be positive multiples of 32 (FastSal downsamples 32×), "
                          f"got {height}x{width}")
    return height, width


def parse_outputs(outputs):
    """'map,prob' or ('map', 'prob') → the requested short names in canonical order."""
    if isinstance(outputs, str):
        outputs = [part.strip() for part in outputs.split(",") if part.strip()]
    requested = list(outputs or ())
    unknown = [name for name in requested if name not in OUTPUT_NAMES]
    if unknown or not requested:
        raise ExportError(f"outputs must be a non-empty subset of {tuple(OUTPUT_NAMES)}, got {tuple(requested)}")
    return tuple(name for name in OUTPUT_NAMES if name in requested)


def prepare_images(images, size, input_dtype, what):
    """Iterable of (H, W, 3) (or (1, H, W, 3)) arrays → list of (H, W, 3) arrays of the input dtype.
    uint8-able images of another size are resized (stretched, LANCZOS); float images must match."""
    if images is None:
        return []
    prepared = []
    for index, image in enumerate(images):
        array = np.asarray(image)
        if array.ndim == 4 and array.shape[0] == 1:
            array = array[0]
        if array.ndim != 3 or array.shape[-1] != 3:
            raise ExportError(f"{what} image {index} must be (height, width, 3) RGB, got shape {array.shape}")
        if tuple(array.shape[:2]) != tuple(size):
            if array.dtype != np.uint8:
                raise ExportError(f"{what} image {index} is {array.shape[0]}x{array.shape[1]} {array.dtype}; "
                                  f"float images must already be {size[0]}x{size[1]}")
            from fastsal_tf.imaging import stretch_lanczos
            array = stretch_lanczos(array, size)
        if input_dtype == "uint8" and array.dtype != np.uint8:
            array = np.clip(np.round(array), 0, 255).astype(np.uint8)
        prepared.append(array.astype(np.float32) if input_dtype == "float32" else array)
    return prepared


# ------------------------------------------------------------------------------------- conversion

def _convert(function, module, mode, representative, verbose=False):
    """Concrete function → .tflite bytes for `mode` (builtin ops only). The function is frozen in memory
    (variables → constants) rather than lowered through a SavedModel on disk: about twice as fast, but
    the file gets no SignatureDef (`add_signature_and_metadata` adds it)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    converter.experimental_lower_to_saved_model = False
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.experimental_new_quantizer = True
        converter._experimental_calibrate_only = True  # noqa: SLF001 — quantized below with a float tail

        def dataset():  # only to give the calibrated model its statistics slots: `calibrate` fills them
            yield [representative[0][None]]
        converter.representative_dataset = dataset
    try:
        with quiet_stderr(not verbose, python_warnings=True):
            result = converter.convert()
            if mode == "int8":
                result = quantize_int8(result, representative)
    except ExportError:
        raise
    except Exception as error:  # noqa: BLE001 — tf.lite's ConverterError and friends
        text = str(error)
        missing = sorted(set(_NOT_BUILTIN.findall(text)))
        if missing or "flex" in text.lower() or "custom op" in text.lower():
            detail = ", ".join(missing) if missing else f"converter said: {_first_lines(text)}"
            raise UnsupportedOpsError(f"the model needs TensorFlow ops that are not LiteRT builtins ({detail}); "
                                      f"Flex / custom ops are not allowed in exported models") from None
        raise ExportError(f"LiteRT conversion ({mode}) failed: {_first_lines(text)}") from None
    return bytes(result)


def _first_lines(text, count=6):
    lines = [line for line in str(text).splitlines() if line.strip()]
    return " | ".join(lines[:count])


# ------------------------------------------------------------------------------------- export

def default_metadata(model, mode, input_size, input_dtype, outputs, map_dtype):
    """The metadata entry written into every export (caller-given keys override these)."""
    import tensorflow as tf

    from fastsal_tf import __version__

    info = model_description(model)
    height, width = input_size
    variant = info.get("variant")
    semantics = {
        "saliency_map": ("sigmoid(logits) in [0, 1], per pixel (paper eq. 2)" if map_dtype == "float32" else
                         "round(255·sigmoid(logits)) as uint8; value/255 gives the [0, 1] map"),
        "probability_map": "softmax of the logits over all H·W pixels; each map sums to 1 (paper eq. 3)",
        "logits": "raw scores of the last convolution (before sigmoid / softmax)",
    }
    output_entries = {}
    for short in outputs:
        name = OUTPUT_NAMES[short]
        output_entries[name] = {"dtype": "uint8" if (short == "map" and map_dtype == "uint8") else "float32",
                                "shape": [1, height, width, 1], "semantics": semantics[name]}
    quantization = {
        "fp32": "none (float32)",
        "fp16": "float16 weights, float32 compute",
        "dynamic": "dynamic-range int8 weights, float32 activations",
        "int8": "full int8 weights (per-channel, bias-corrected) and activations; logits dequantized, "
                "sigmoid / softmax in float32",
    }[mode]
    return {
        "format_version": METADATA_FORMAT_VERSION,
        "name": f"FastSal-{variant}" if variant else info.get("name", model.name),
        "variant": variant,
        "description": "FastSal visual saliency prediction (Hu & McGuinness, ICPR 2020), MobileNetV2 encoder",
        "input_size": [height, width],
        "input": {"name": INPUT_NAME, "dtype": input_dtype, "shape": [1, height, width, 3], "layout": "NHWC",
                  "colour_order": "RGB",
                  "value_range": None if info.get("normalization") == "none" else [0, 255],
                  "preprocessing": f"resize (stretch) the picture to {width}x{height}; " + (
                      "feed it already normalised (the model has no normalisation layer)"
                      if info.get("normalization") == "none" else "normalisation is inside the model"),
                  "normalization": info.get("normalization"),
                  "normalization_mean": info.get("normalization_mean"),
                  "normalization_std": info.get("normalization_std")},
        "outputs": output_entries,
        "export_mode": mode,
        "quantization": quantization,
        "padding": info.get("padding"),
        "pixel_shuffle": info.get("pixel_shuffle"),
        "training_data": "unknown",
        "version": __version__,
        "license": "Apache-2.0",
        "exporter": {"fastsal_tf": __version__, "tensorflow": tf.__version__},
    }


def parity_path_for(out_path):
    out_path = pathlib.Path(out_path)
    return out_path.with_name(out_path.stem + ".parity.json")


def export_tflite(model, out_path, mode="fp32", input_size=DEFAULT_INPUT_SIZE, input_dtype="uint8",
                  outputs=("map",), map_dtype="float32", representative_images=None, validation_images=None,
                  num_validation=8, metadata=None, check_parity=True, num_threads=2, verbose=False,
                  gpu_friendly=False):
    """Exports a Keras FastSal model to a LiteRT flatbuffer at `out_path` (and `<stem>.parity.json`).

    model: a Keras model whose "logits" output / layer (or single output) gives (N, H, W, 1) logits from RGB
      0–255; a FastSal model built at another size is rebuilt at `input_size`.
    mode: "fp32", "fp16", "dynamic" (dynamic-range int8 weights) or "int8" (full integer body).
    input_size: (height, width), multiples of 32. input_dtype: "uint8" or "float32" (both RGB 0–255).
    outputs: subset of ("map", "prob", "logits") (or "map,prob"); map_dtype: "float32" or "uint8".
    representative_images: (H, W, 3) uint8 arrays (resized if needed) for the int8 calibration; required
      for int8. validation_images: images for the parity check (default: the first `num_validation`
      representative images, or synthetic ones).
    metadata: dict merged over `default_metadata(...)` and embedded as JSON.
    check_parity: False records the parity numbers but does not fail on them (experiments only).
    gpu_friendly: replace what the TFLite GPU delegate cannot run inside the network (the GATHER of a
      PyTorch-order pixel shuffle: strided slices + concat instead, same values) and fail unless the
      delegate would then take the whole network in one partition (fastsal_tf.export.gpu_compat; the
      report lands in the parity JSON under "gpu_delegate"). Needs the float32 map (map_dtype="float32").
    Nothing is written unless the conversion, the op / shape checks and the parity check all pass.
    Returns an ExportResult. Raises ExportError (a ValueError): UnsupportedOpsError, ParityError, ...
    """
    if mode not in MODES:
        raise ExportError(f"mode must be one of {MODES}, got {mode!r}")
    if input_dtype not in INPUT_DTYPES:
        raise ExportError(f"input_dtype must be one of {INPUT_DTYPES}, got {input_dtype!r}")
    if map_dtype not in MAP_DTYPES:
        raise ExportError(f"map_dtype must be one of {MAP_DTYPES}, got {map_dtype!r}")
    input_size = check_input_size(input_size)
    outputs = parse_outputs(outputs)
    if gpu_friendly and "map" in outputs and map_dtype == "uint8":
        raise ExportError("gpu_friendly export: use the float32 saliency map (LiteRT's GPU accelerator takes the "
                          "uint8 map's 1/255 quantization for a float → uint8 quantization and returns 255 everywhere)")
    out_path = pathlib.Path(out_path)
    if out_path.suffix != ".tflite":
        raise ExportError(f"the output file must end in .tflite, got {str(out_path)!r}")
    if out_path.exists() and out_path.is_dir():
        raise ExportError(f"{str(out_path)!r} is a directory")
    if metadata is not None:
        try:
            json.dumps(metadata)
        except (TypeError, ValueError) as error:
            raise ExportError(f"metadata must be JSON-serialisable: {error}") from None
    representative = prepare_images(representative_images, input_size, input_dtype, "representative")
    if mode == "int8" and not representative:
        raise ExportError("int8 export needs representative images (calibration data): pass "
                          "representative_images (e.g. 200 images of the training distribution)")
    if validation_images is not None:
        validation = prepare_images(validation_images, input_size, input_dtype, "validation")
        source = "given"
        if not validation:
            raise ExportError("validation_images is empty")
    elif representative:
        validation, source = representative[:num_validation], "representative"
    else:
        from fastsal_tf.export.images import synthetic_images
        validation = prepare_images(synthetic_images(num_validation, input_size), input_size, input_dtype, "")
        source = "synthetic"

    keras_logits = logits_model(model, input_size)
    if gpu_friendly:
        from fastsal_tf.export.gpu_friendly import gpu_friendly_model
        keras_logits = gpu_friendly_model(keras_logits)
    entry = default_metadata(model, mode, input_size, input_dtype, outputs, map_dtype)
    entry["gpu_friendly"] = bool(gpu_friendly)
    entry.update(metadata or {})

    with quiet_stderr(not verbose, python_warnings=True):
        function, module, output_names = trace_serving(fold_head_into_shuffle(keras_logits), input_size,
                                                       input_dtype, outputs, map_dtype)
    converted = _convert(function, module, mode, representative, verbose)
    model_bytes = add_signature_and_metadata(converted, output_names, outputs, map_dtype, input_dtype, entry)
    ops = check_graph(model_bytes, mode, input_size, input_dtype, outputs, map_dtype)
    gpu = None
    if gpu_friendly:
        from fastsal_tf.export.gpu_compat import gpu_compatibility
        gpu = gpu_compatibility(model_bytes)
        if gpu.verdict == "split":
            raise ExportError(f"gpu_friendly export: the GPU delegate would still split the graph (unsupported: "
                              f"{gpu.unsupported}; on the CPU: {gpu.cpu_ops})")
    if read_metadata(model_bytes) != json.loads(json.dumps(entry)):
        raise ExportError("the embedded metadata does not read back")

    got = run_tflite(model_bytes, validation, num_threads)
    report = parity_report(got, reference_outputs(keras_logits, validation), mode, outputs, map_dtype)
    report.update(model=out_path.name, mode=mode, input_size=list(input_size), input_dtype=input_dtype,
                  map_dtype=map_dtype, num_images=len(validation), images=source, enforced=bool(check_parity),
                  size_bytes=len(model_bytes), sha256=hashlib.sha256(model_bytes).hexdigest(), ops=ops,
                  num_representative=len(representative) if mode == "int8" else 0)
    if gpu is not None:
        report["gpu_delegate"] = {key: value for key, value in gpu.to_dict().items() if key != "ops"}
    if check_parity and not report["passed"]:
        raise ParityError(f"{mode} export of {out_path.name} fails the parity bounds (nothing written): "
                          + "; ".join(report["failures"]), report)

    parity_path = parity_path_for(out_path)
    write_all_atomic({out_path: model_bytes, parity_path: json.dumps(report, indent=1) + "\n"}, fsync=True)
    return ExportResult(path=out_path, parity_path=parity_path, mode=mode, size_bytes=len(model_bytes), ops=ops,
                        metadata=entry, parity=report)
