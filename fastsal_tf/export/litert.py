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
`export_tflite` refuses models that need Flex or custom ops, checks parity against the Keras model (bounds
in PARITY_BOUNDS) and writes the .tflite and its `<name>.parity.json` report only when every check has
passed (atomically: temp file + os.replace).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
import re
import sys
import tempfile
import warnings

import numpy as np

MODES = ("fp32", "fp16", "dynamic", "int8")
INPUT_DTYPES = ("uint8", "float32")
MAP_DTYPES = ("float32", "uint8")
INPUT_NAME = "image"
SIGNATURE_KEY = "serving_default"
# Short output name (API / CLI) → tensor and signature name in the .tflite, in their order in the file.
OUTPUT_NAMES = {"map": "saliency_map", "prob": "probability_map", "logits": "logits"}
METADATA_NAME = "fastsal_metadata"
METADATA_FORMAT_VERSION = 1
DEFAULT_INPUT_SIZE = (192, 256)

# Parity bounds per export mode, applied to every exported output (the uint8 map is compared after /255):
# mean and per-image minimum Pearson CC with the Keras output (fp16: CC ≥ 0.999 on every image; dynamic
# uses the int8 bounds), the largest |Δ| on the [0, 1] map, the largest |Δ| of the probability map and
# the logits relative to their largest magnitude (fp32 only: there the outputs must agree to float
# rounding, and CC alone would be meaningless on a nearly constant map), and |sum − 1| of the
# probability map. Random networks are badly conditioned: the authors' random test checkpoint
# (random_A.pth, randomised BatchNorm statistics) misses the fp32 map bound at 192×256 (1.3e-4; its logits
# differ by 5e-4 between TF and LiteRT, as between torch and ONNX Runtime) — export its logits instead.
PARITY_BOUNDS = {
    "fp32": {"mean_cc": None, "min_cc": None, "map_max_abs": 1e-4, "rel_max_abs": 1e-3, "prob_sum_abs": 1e-3},
    "fp16": {"mean_cc": 0.999, "min_cc": 0.999, "map_max_abs": None, "rel_max_abs": None, "prob_sum_abs": 1e-3},
    "dynamic": {"mean_cc": 0.99, "min_cc": 0.98, "map_max_abs": None, "rel_max_abs": None, "prob_sum_abs": 1e-3},
    "int8": {"mean_cc": 0.99, "min_cc": 0.98, "map_max_abs": None, "rel_max_abs": None, "prob_sum_abs": 1e-3},
}
UINT8_MAP_TOLERANCE = 0.5 / 255  # rounding of the uint8 map, added to map_max_abs

# Names of the float tail ops; the int8 quantizer is told to leave them (and the graph outputs) in float.
_TAIL_PREFIX = "fastsal_tail_"
_NOT_BUILTIN = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")


class ExportError(ValueError):
    """The model cannot be exported as asked (bad argument, unsupported op, failed check)."""


class UnsupportedOpsError(ExportError):
    """The model needs ops that are not LiteRT builtins (Flex / custom)."""


class ParityError(ExportError):
    """The .tflite output does not match the Keras output within the bounds; `report` holds the numbers."""

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


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
            from PIL import Image
            array = np.asarray(Image.fromarray(array).resize((size[1], size[0]), Image.LANCZOS))
        if input_dtype == "uint8" and array.dtype != np.uint8:
            array = np.clip(np.round(array), 0, 255).astype(np.uint8)
        prepared.append(array.astype(np.float32) if input_dtype == "float32" else array)
    return prepared


# ------------------------------------------------------------------------------------- Keras side

def logits_model(model, input_size):
    """A Keras model mapping (N, H, W, 3) float RGB 0–255 at `input_size` to the (N, H, W, 1) logits of
    `model`. Uses the "logits" output / layer of a FastSal model (or the single output of another model);
    a FastSal model built for another size is rebuilt at `input_size` with its weights copied."""
    import keras

    built = tuple(model.input_shape[1:3]) if not isinstance(model.input_shape, list) else None
    if built is None:
        raise ExportError("the model must have a single image input")
    if any(side not in (None, want) for side, want in zip(built, input_size)):
        model = _rebuild_fastsal(model, input_size)
    outputs = model.output
    if isinstance(outputs, dict):
        if "logits" in outputs:
            logits = outputs["logits"]
        else:
            logits = _logits_layer_output(model)
    elif isinstance(outputs, (list, tuple)):
        logits = _logits_layer_output(model) if len(outputs) != 1 else outputs[0]
    else:
        logits = outputs
    if len(logits.shape) != 4 or logits.shape[-1] != 1:
        raise ExportError(f"the model's logits must be (N, H, W, 1), got {tuple(logits.shape)}")
    return keras.Model(model.inputs[0], logits, name=f"{model.name}_logits")


def _logits_layer_output(model):
    try:
        return model.get_layer("logits").output
    except ValueError:
        raise ExportError("the model has several outputs and neither a 'logits' output nor a 'logits' layer") from None


def _rebuild_fastsal(model, input_size):
    from fastsal_tf.models import build_fastsal, describe

    try:
        info = describe(model)
    except Exception:  # noqa: BLE001 — not one of our models
        raise ExportError(f"the model was built for input {model.input_shape[1:3]} and is not a FastSal model "
                          f"that can be rebuilt at {input_size[0]}x{input_size[1]}") from None
    rebuilt = build_fastsal(info["variant"], (*input_size, 3), padding=info["padding"],
                            bn_epsilon=info["bn_epsilon"], pixel_shuffle=info["pixel_shuffle"],
                            normalization=info["normalization"], heads=("logits",))
    for layer in rebuilt.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return rebuilt


def model_description(model):
    """What the metadata says about the source model (variant, normalisation...), best effort."""
    from fastsal_tf.models import describe
    from fastsal_tf.models.layers import NORMALIZATIONS

    try:
        info = describe(model)
    except Exception:  # noqa: BLE001
        info = {"name": model.name, "variant": None, "normalization": None}
    norm = info.get("normalization")
    if norm in NORMALIZATIONS:
        mean, std = NORMALIZATIONS[norm]
        info["normalization_mean"], info["normalization_std"] = [float(m) for m in mean], [float(s) for s in std]
    return info


# ------------------------------------------------------------------------------------- conversion

@contextlib.contextmanager
def _quiet_stderr(enabled=True):
    """Keeps the TF/MLIR C++ log lines off fd 2 (the errors still come back in the exceptions)."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _trace(keras_logits, input_size, input_dtype, outputs, map_dtype):
    """The fixed-shape batch-1 serving function (cast → model → float tail), traced once.
    Returns (concrete function, a tf.Module holding its variables, {graph output tensor name: output name})."""
    import tensorflow as tf

    height, width = input_size

    def serve(image):
        x = tf.cast(image, tf.float32)
        logits = tf.cast(keras_logits(x, training=False), tf.float32)
        result = {}
        if "map" in outputs:
            saliency = tf.math.sigmoid(logits, name=_TAIL_PREFIX + "sigmoid")
            if map_dtype == "uint8":
                scaled = tf.multiply(saliency, 255.0, name=_TAIL_PREFIX + "scale")
                saliency = tf.cast(tf.round(scaled, name=_TAIL_PREFIX + "round"), tf.uint8, name=_TAIL_PREFIX + "cast")
            result[OUTPUT_NAMES["map"]] = saliency
        if "prob" in outputs:
            flat = tf.reshape(logits, (1, height * width), name=_TAIL_PREFIX + "flatten")
            prob = tf.nn.softmax(flat, axis=-1, name=_TAIL_PREFIX + "softmax")
            result[OUTPUT_NAMES["prob"]] = tf.reshape(prob, (1, height, width, 1), name=_TAIL_PREFIX + "unflatten")
        if "logits" in outputs:
            result[OUTPUT_NAMES["logits"]] = tf.identity(logits, name=_TAIL_PREFIX + "logits")
        return result

    spec = tf.TensorSpec((1, height, width, 3), tf.uint8 if input_dtype == "uint8" else tf.float32, name=INPUT_NAME)
    module = tf.Module()
    module.model_variables = [getattr(v, "value", v) for v in keras_logits.weights]
    module.serve = tf.function(serve, input_signature=[spec], autograph=False)
    function = module.serve.get_concrete_function()
    names = {tensor.name.split(":")[0]: name for name, tensor in function.structured_outputs.items()}
    return function, module, names


def _convert(function, module, mode, representative, verbose=False):
    """Concrete function → .tflite bytes for `mode` (builtin ops only). The function is frozen in memory
    (variables → constants) rather than lowered through a SavedModel on disk: about twice as fast, but
    the file gets no SignatureDef (`_finalise` adds it)."""
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

        def dataset():  # only to give the calibrated model its statistics slots: `_calibrate` fills them
            yield [representative[0][None]]
        converter.representative_dataset = dataset
    try:
        with _quiet_stderr(not verbose):
            result = converter.convert()
            if mode == "int8":
                result = _quantize_int8(result, representative)
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


def _quantize_int8(calibrated, representative):
    """Calibrated float model → int8 model with the float tail: own calibration statistics over all the
    representative images (`_calibrate`), the MLIR quantizer (per-channel weights, `_quantize_with_float_tail`)
    and bias correction of every int8 convolution (`_correct_biases`)."""
    statistics, input_means = _calibrate(calibrated, representative)
    quantized = _quantize_with_float_tail(statistics)
    return _correct_biases(statistics, quantized, input_means)


def _quantize_with_float_tail(calibrated):
    """Quantizes a calibrated model to int8, keeping the float tail (sigmoid, softmax, reshapes, uint8
    rounding) and the graph outputs in float32: the logits are dequantized before the tail."""
    from ai_edge_litert.tools import flatbuffer_utils
    from tensorflow.lite.python import convert as tflite_convert

    model = flatbuffer_utils.convert_bytearray_to_object(calibrated)
    subgraph = model.subgraphs[0]
    names = [_decode(t.name) for t in subgraph.tensors]
    denylist = {name for name in names if name.startswith(_TAIL_PREFIX)} | {names[i] for i in subgraph.outputs}
    return tflite_convert.mlir_quantize(calibrated, disable_per_channel=False, fully_quantize=False,
                                        denylisted_nodes=sorted(denylist))


def _calibrate(calibrated, representative):
    """Fills the calibration statistics (min / max of every float activation) of the calibrated model
    from all the representative images, and returns (model bytes, {tensor index: per-channel mean}) with
    the mean of every convolution input over the images (for `_correct_biases`).

    TensorFlow's calibrator is only run on one image, to lay out the statistics: it records the first
    operand of every ADD with the ADD's own result range (most likely as LiteRT runs ADD in place in that
    operand's buffer), e.g. FastSal-A's adapt_0 ReLU as [−23, 52] instead of [0, 2.1], 25× too coarse (likewise
    the decoder projections, the MobileNetV2 projections before the residual ADDs and the in-model
    normalisation MUL). Here every tensor is read back from an interpreter that keeps all intermediate
    tensors, without XNNPACK (which would hide them)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(calibrated)
    subgraph = model.subgraphs[0]
    slots = [i for i, t in enumerate(subgraph.tensors)
             if t.quantization is not None and t.quantization.min is not None and len(t.quantization.min) == 1]
    conv_codes = {schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.DEPTHWISE_CONV_2D}
    conv_inputs = sorted({op.inputs[0] for op in subgraph.operators
                          if flatbuffer_utils.get_builtin_code_from_operator_code(
                              model.operatorCodes[op.opcodeIndex]) in conv_codes})
    interpreter = Interpreter(model_content=bytes(calibrated), experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                              num_threads=os.cpu_count() or 1)
    interpreter.allocate_tensors()
    (image,) = interpreter.get_input_details()
    low = dict.fromkeys(slots, np.inf)
    high = dict.fromkeys(slots, -np.inf)
    sums = {}
    for array in representative:
        interpreter.set_tensor(image["index"], np.asarray(array)[None].astype(image["dtype"]))
        interpreter.invoke()
        for index in slots:
            value = interpreter.get_tensor(index)
            low[index] = min(low[index], float(value.min()))
            high[index] = max(high[index], float(value.max()))
        for index in conv_inputs:
            value = interpreter.get_tensor(index)
            mean = value.reshape(-1, value.shape[-1]).mean(axis=0, dtype=np.float64)
            sums[index] = sums.get(index, 0.0) + mean
    for index in slots:
        if not (np.isfinite(low[index]) and np.isfinite(high[index])):
            raise ExportError(f"int8 calibration: no finite range for tensor {_decode(subgraph.tensors[index].name)!r}")
        subgraph.tensors[index].quantization.min = [low[index]]
        subgraph.tensors[index].quantization.max = [high[index]]
    return _pack(model), {index: total / len(representative) for index, total in sums.items()}


def _correct_biases(calibrated, quantized, input_means):
    """Bias correction of the int8 convolutions (Nagel et al. 2019, "Data-free quantization", sec. 4.2):
    the rounding error δW of the int8 weights shifts every output channel by δW·E[x] on average, and
    folds it into the int32 bias (b ← b − δW·E[x], E[x] the per-channel mean of the conv's input over the
    representative images). Cheap and exact in the mean; without it the trained FastSal-A misses the
    int8 parity bounds: its MobileNetV2 projections read ReLU6 channels that sit at 6 (constant) through
    large weights, so the rounding of those weights adds a constant offset per channel (block_15_project:
    error 0.40 rms, 0.045 of it left after removing the per-channel mean), and the offsets add up through
    the residual stream (saliency map CC mean 0.988 / min 0.96 → 0.998 / 0.99).
    Only int8 CONV_2D / DEPTHWISE_CONV_2D with int32 bias are touched; float (denylisted) ops are not."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    float_model = flatbuffer_utils.convert_bytearray_to_object(calibrated)
    float_graph = float_model.subgraphs[0]
    float_ops = {_decode(float_graph.tensors[op.outputs[0]].name): op for op in float_graph.operators}
    model = flatbuffer_utils.convert_bytearray_to_object(quantized)
    graph = model.subgraphs[0]
    conv_codes = {schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.DEPTHWISE_CONV_2D}
    buffer_users = {}
    for tensor in graph.tensors:
        buffer_users[tensor.buffer] = buffer_users.get(tensor.buffer, 0) + 1

    def constant(model_object, tensor, dtype):
        data = model_object.buffers[tensor.buffer].data
        return np.frombuffer(bytes(np.asarray(data, np.uint8)), dtype).reshape([int(v) for v in tensor.shape])

    for op in graph.operators:
        code = flatbuffer_utils.get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex])
        if code not in conv_codes or len(op.inputs) < 3 or op.inputs[2] < 0:
            continue
        weights, bias = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]]
        float_op = float_ops.get(_decode(graph.tensors[op.outputs[0]].name))
        if weights.type != schema.TensorType.INT8 or bias.type != schema.TensorType.INT32 or float_op is None \
                or float_op.inputs[0] not in input_means:
            continue
        float_weights = float_graph.tensors[float_op.inputs[1]]
        if float_weights.type != schema.TensorType.FLOAT32 or float_weights.buffer == 0:
            continue
        w = constant(float_model, float_weights, np.float32).astype(np.float64)
        axis = int(weights.quantization.quantizedDimension or 0)
        scale_shape = [1] * w.ndim
        scale_shape[axis] = -1
        scales = np.asarray(weights.quantization.scale, np.float64).reshape(scale_shape)
        error = constant(model, weights, np.int8).astype(np.float64) * scales - w
        mean = np.asarray(input_means[float_op.inputs[0]], np.float64)
        if code == schema.BuiltinOperator.CONV_2D:  # [out, kh, kw, in]
            shift = np.einsum("okhi,i->o", error, mean)
        else:  # depthwise [1, kh, kw, in·multiplier]: output channel c reads input channel c // multiplier
            shift = error.sum(axis=(0, 1, 2)) * np.repeat(mean, error.shape[-1] // mean.size)
        bias_scales = np.asarray(bias.quantization.scale, np.float64)
        corrected = np.round(constant(model, bias, np.int32).astype(np.float64) - shift / bias_scales)
        corrected = np.clip(corrected, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
        buffer = schema.BufferT()
        buffer.data = corrected.reshape(-1).view(np.uint8)
        if buffer_users.get(bias.buffer, 0) > 1:  # shared constant: give this op its own copy
            model.buffers.append(buffer)
            bias.buffer = len(model.buffers) - 1
        else:
            model.buffers[bias.buffer] = buffer
    return _pack(model)


def _decode(name):
    return name.decode() if isinstance(name, bytes) else str(name)


# ------------------------------------------------------------------------------------- flatbuffer

def _read_object(model_bytes):
    from ai_edge_litert.tools import flatbuffer_utils

    return flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))


def _pack(model_object):
    """ModelT → bytes, with buffer data 16-byte aligned as the converter writes it (the Python
    flatbuffers builder would align them to 1)."""
    import flatbuffers

    class AlignedBuilder(flatbuffers.Builder):
        def CreateNumpyVector(self, x):  # noqa: N802 — flatbuffers API
            if x.dtype != np.uint8 or x.ndim != 1:
                return super().CreateNumpyVector(x)
            self.StartVector(1, x.size, 16)
            payload = x.tobytes()
            self.head = self.head - len(payload)
            self.Bytes[self.head:self.head + len(payload)] = payload
            self.vectorNumElems = x.size
            return self.EndVector()

    builder = AlignedBuilder(1024)
    builder.Finish(model_object.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _op_names(model_object):
    """[(name, is_builtin)] of the operator codes used by the model's operators."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    codes = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    used = sorted({op.opcodeIndex for sg in model_object.subgraphs for op in (sg.operators or [])})
    result = []
    for index in used:
        opcode = model_object.operatorCodes[index]
        code = flatbuffer_utils.get_builtin_code_from_operator_code(opcode)
        if code == schema.BuiltinOperator.CUSTOM:
            result.append((_decode(opcode.customCode or b"CUSTOM"), False))
        else:
            result.append((codes.get(code, f"BUILTIN_{code}"), code in codes))
    return result


def list_ops(model):
    """Sorted names of the ops a .tflite model uses (path or bytes). Custom / Flex ops appear under their
    custom code (e.g. 'FlexErfinv')."""
    return sorted({name for name, _ in _op_names(_read_object(_model_bytes(model)))})


def read_metadata(model):
    """The FastSal JSON metadata embedded in a .tflite (path or bytes) as a dict; ValueError if absent."""
    model_object = _read_object(_model_bytes(model))
    for entry in model_object.metadata or []:
        if _decode(entry.name) == METADATA_NAME:
            data = model_object.buffers[entry.buffer].data
            return json.loads(bytes(np.asarray(data, np.uint8)).decode("utf-8"))
    raise ValueError(f"{_describe_source(model)} has no {METADATA_NAME!r} metadata entry")


def describe_tflite(path):
    """Summary of a .tflite file: size, signature tensors (name, dtype, shape, quantisation), ops and the
    FastSal metadata (None when absent)."""
    path = pathlib.Path(path)
    interpreter = make_interpreter(path, num_threads=1)

    def tensors(details):
        return [{"name": d["name"], "dtype": np.dtype(d["dtype"]).name, "shape": [int(v) for v in d["shape"]],
                 "quantization": [float(d["quantization"][0]), int(d["quantization"][1])]} for d in details]
    try:
        metadata = read_metadata(path)
    except ValueError:
        metadata = None
    return {"path": str(path), "size_bytes": path.stat().st_size,
            "signatures": sorted(interpreter.get_signature_list()),
            "inputs": tensors(interpreter.get_input_details()), "outputs": tensors(interpreter.get_output_details()),
            "ops": list_ops(path), "metadata": metadata}


def _model_bytes(model):
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    return pathlib.Path(model).read_bytes()


def _describe_source(model):
    return "the model" if isinstance(model, (bytes, bytearray, memoryview)) else str(model)


def _finalise(model_bytes, output_names, outputs, map_dtype, input_dtype, metadata):
    """Adds the SignatureDef ("serving_default": "image" → the named outputs), names the tensors after it,
    orders the outputs, fixes the int8 input quantisation to the exact 0–255 range, annotates the uint8
    map and embeds the metadata. output_names: {converted output tensor name: signature name}."""
    from ai_edge_litert import schema_py_generated as schema

    model_object = _read_object(model_bytes)
    if len(model_object.subgraphs) != 1:
        raise ExportError(f"the converted model has {len(model_object.subgraphs)} subgraphs, expected 1")
    subgraph = model_object.subgraphs[0]
    if len(subgraph.inputs) != 1:
        raise ExportError(f"the converted model has {len(subgraph.inputs)} inputs, expected 1")
    found = {}
    for index in subgraph.outputs:
        name = output_names.get(_decode(subgraph.tensors[index].name))
        if name is None:
            raise ExportError(f"cannot match converted output {_decode(subgraph.tensors[index].name)!r} to "
                              f"{sorted(output_names.values())}")
        found[name] = index
    order = [OUTPUT_NAMES[name] for name in outputs]
    if sorted(found) != sorted(order):
        raise ExportError(f"the converted outputs are {sorted(found)}, expected {order}")

    def tensor_map(name, index):
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = name, index
        return entry

    signature = schema.SignatureDefT()
    signature.signatureKey = SIGNATURE_KEY
    signature.subgraphIndex = 0
    signature.inputs = [tensor_map(INPUT_NAME, subgraph.inputs[0])]
    signature.outputs = [tensor_map(name, found[name]) for name in order]
    model_object.signatureDefs = [signature]
    subgraph.outputs = [found[name] for name in order]
    for entry in signature.inputs + signature.outputs:
        subgraph.tensors[entry.tensorIndex].name = entry.name
    if "map" in outputs and map_dtype == "uint8":
        quantization = schema.QuantizationParametersT()
        quantization.scale, quantization.zeroPoint = [1.0 / 255.0], [0]
        subgraph.tensors[found[OUTPUT_NAMES["map"]]].quantization = quantization
    if input_dtype == "uint8":
        _exact_input_quantization(model_object, subgraph, subgraph.inputs[0])
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata, indent=1, sort_keys=True).encode("utf-8"), np.uint8)
    model_object.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model_object.buffers) - 1
    model_object.metadata = [m for m in (model_object.metadata or []) if _decode(m.name) != METADATA_NAME] + [entry]
    return _pack(model_object)


def _signature_tensor(entries, name):
    return next(entry.tensorIndex for entry in entries if _decode(entry.name) == name)


def _exact_input_quantization(model_object, subgraph, input_index):
    """In a quantized graph fed uint8 pixels, the first QUANTIZE (float image → int8) gets scale 1 and zero
    point −128: lossless for 0–255 whatever range the representative images happened to cover. Only done
    when that tensor feeds element-wise ops (MUL / ADD / SUB, e.g. the in-model normalisation), which
    derive their rescaling from the tensors at run time; a convolution's int32 bias was quantized with
    the calibrated input scale, so its input is left alone."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    def code(op):
        return flatbuffer_utils.get_builtin_code_from_operator_code(model_object.operatorCodes[op.opcodeIndex])

    elementwise = {schema.BuiltinOperator.MUL, schema.BuiltinOperator.ADD, schema.BuiltinOperator.SUB}
    image_tensors = {input_index}
    for op in subgraph.operators:
        if code(op) == schema.BuiltinOperator.CAST and op.inputs[0] in image_tensors:
            image_tensors.add(op.outputs[0])
        elif code(op) == schema.BuiltinOperator.QUANTIZE and op.inputs[0] in image_tensors:
            index = op.outputs[0]
            tensor = subgraph.tensors[index]
            consumers = [other for other in subgraph.operators if index in other.inputs]
            if tensor.quantization is None or not consumers or any(code(c) not in elementwise for c in consumers):
                continue
            if tensor.type == schema.TensorType.INT8:
                tensor.quantization.scale, tensor.quantization.zeroPoint = [1.0], [-128]
            elif tensor.type == schema.TensorType.UINT8:
                tensor.quantization.scale, tensor.quantization.zeroPoint = [1.0], [0]


def _check_graph(model_bytes, mode, input_size, input_dtype, outputs, map_dtype):
    """Builtin ops only, fixed batch-1 input, expected dtypes; an int8 model's tail is float."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model_object = _read_object(model_bytes)
    ops = _op_names(model_object)
    bad = sorted(name for name, builtin in ops if not builtin)
    if bad:
        raise UnsupportedOpsError(f"the converted model uses non-builtin ops {bad}; only LiteRT builtin ops "
                                  f"are allowed (Flex / custom ops are not)")
    subgraph = model_object.subgraphs[0]
    image = subgraph.tensors[subgraph.inputs[0]]
    expected = [1, *input_size, 3]
    signature_shape = None if image.shapeSignature is None else [int(v) for v in image.shapeSignature]
    if len(subgraph.inputs) != 1 or [int(v) for v in image.shape] != expected or \
            (signature_shape is not None and signature_shape != expected):
        raise ExportError(f"the converted input has shape {list(image.shape)} (signature {signature_shape}), "
                          f"expected a fixed {expected}")
    dtype = schema.TensorType.UINT8 if input_dtype == "uint8" else schema.TensorType.FLOAT32
    if image.type != dtype:
        raise ExportError(f"the converted input is of tensor type {image.type}, expected {input_dtype}")
    if mode == "int8":
        float_tail = {schema.BuiltinOperator.LOGISTIC, schema.BuiltinOperator.SOFTMAX}
        for op in subgraph.operators:
            code = flatbuffer_utils.get_builtin_code_from_operator_code(model_object.operatorCodes[op.opcodeIndex])
            if code in float_tail and subgraph.tensors[op.inputs[0]].type != schema.TensorType.FLOAT32:
                raise ExportError("the int8 model quantized the sigmoid / pixel softmax; it must stay in float")
        quantized = sum(t.type == schema.TensorType.INT8 for t in subgraph.tensors)
        if not quantized:
            raise ExportError("the int8 model holds no int8 tensors")
    for name in outputs:
        tensor = subgraph.tensors[_signature_tensor(model_object.signatureDefs[0].outputs, OUTPUT_NAMES[name])]
        want = schema.TensorType.UINT8 if (name == "map" and map_dtype == "uint8") else schema.TensorType.FLOAT32
        if tensor.type != want or [int(v) for v in tensor.shape] != [1, *input_size, 1]:
            raise ExportError(f"output {OUTPUT_NAMES[name]!r} is type {tensor.type} shape {list(tensor.shape)}")
    return sorted({name for name, _ in ops})


# ------------------------------------------------------------------------------------- parity

def make_interpreter(model, num_threads=2):
    """An ai_edge_litert Interpreter for a .tflite path or bytes, tensors allocated."""
    from ai_edge_litert.interpreter import Interpreter

    with _quiet_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        if isinstance(model, (bytes, bytearray, memoryview)):
            interpreter = Interpreter(model_content=bytes(model), num_threads=num_threads)
        else:
            interpreter = Interpreter(model_path=os.fspath(model), num_threads=num_threads)
        interpreter.allocate_tensors()
    return interpreter


def run_tflite(model, images, num_threads=2):
    """Runs a FastSal .tflite on each (H, W, 3) image; returns {output name: (N, H, W, 1) array} in the
    file's dtypes (a uint8 map stays uint8)."""
    interpreter = model if hasattr(model, "get_signature_runner") else make_interpreter(model, num_threads)
    runner = interpreter.get_signature_runner(SIGNATURE_KEY)
    results = {}
    for image in images:
        for name, value in runner(**{INPUT_NAME: np.asarray(image)[None]}).items():
            results.setdefault(name, []).append(np.array(value[0]))
    return {name: np.stack(values) for name, values in results.items()}


def reference_outputs(keras_logits, images):
    """Float64 references from the Keras model: logits, map = sigmoid, prob = pixel softmax."""
    batch = np.stack([np.asarray(image, np.float32) for image in images])
    logits = np.concatenate([np.asarray(keras_logits(batch[i:i + 8], training=False))
                             for i in range(0, len(batch), 8)]).astype(np.float64)
    flat = logits.reshape(len(images), -1)
    prob = np.exp(flat - flat.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    return {OUTPUT_NAMES["logits"]: logits, OUTPUT_NAMES["map"]: 1.0 / (1.0 + np.exp(-logits)),
            OUTPUT_NAMES["prob"]: prob.reshape(logits.shape)}


def correlation(a, b):
    """Pearson CC of two arrays (1.0 for two equal constants, 0.0 when only one is constant)."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    if denominator == 0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float((a * b).sum() / denominator)


def parity_report(tflite_outputs, references, mode, outputs, map_dtype):
    """Per-output CC / max |Δ| numbers and the verdict against PARITY_BOUNDS[mode]."""
    bounds = PARITY_BOUNDS[mode]
    report = {"bounds": dict(bounds), "outputs": {}, "passed": True, "failures": []}
    for short in outputs:
        name = OUTPUT_NAMES[short]
        got = tflite_outputs[name].astype(np.float64)
        if short == "map" and map_dtype == "uint8":
            got = got / 255.0
        want = references[name]
        ccs = [correlation(g, w) for g, w in zip(got, want)]
        max_abs = [float(np.abs(g - w).max()) for g, w in zip(got, want)]
        entry = {"cc": [round(v, 6) for v in ccs], "cc_mean": float(np.mean(ccs)), "cc_min": float(np.min(ccs)),
                 "max_abs": max_abs, "max_abs_max": float(np.max(max_abs))}
        failures = []
        if bounds["mean_cc"] is not None and entry["cc_mean"] < bounds["mean_cc"]:
            failures.append(f"{name}: mean CC {entry['cc_mean']:.5f} < {bounds['mean_cc']}")
        if bounds["min_cc"] is not None and entry["cc_min"] < bounds["min_cc"]:
            failures.append(f"{name}: per-image min CC {entry['cc_min']:.5f} < {bounds['min_cc']}")
        if short != "map" and bounds["rel_max_abs"] is not None:
            scale = float(np.abs(want).max())
            limit = bounds["rel_max_abs"] * (max(1.0, scale) if short == "logits" else scale)
            entry["max_abs_bound"] = limit
            if entry["max_abs_max"] > limit:
                failures.append(f"{name}: max |Δ| {entry['max_abs_max']:.2e} > {limit:.2e}")
        if short == "map" and bounds["map_max_abs"] is not None:
            limit = bounds["map_max_abs"] + (UINT8_MAP_TOLERANCE if map_dtype == "uint8" else 0.0)
            entry["max_abs_bound"] = limit
            if entry["max_abs_max"] > limit:
                failures.append(f"{name}: max |Δ| {entry['max_abs_max']:.2e} > {limit:.2e}")
        if short == "prob":
            sums = [float(g.sum()) for g in got]
            entry["sums"] = sums
            worst = max(abs(s - 1.0) for s in sums)
            if worst > bounds["prob_sum_abs"]:
                failures.append(f"{name}: sums to {sums[int(np.argmax([abs(s - 1) for s in sums]))]:.5f}, not 1")
        entry["passed"] = not failures
        report["outputs"][name] = entry
        report["failures"] += failures
    report["passed"] = not report["failures"]
    return report


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
        from fastsal_tf.export.gpu_compat import gpu_friendly_model
        keras_logits = gpu_friendly_model(keras_logits)
    entry = default_metadata(model, mode, input_size, input_dtype, outputs, map_dtype)
    entry["gpu_friendly"] = bool(gpu_friendly)
    entry.update(metadata or {})

    with _quiet_stderr(not verbose):
        function, module, output_names = _trace(keras_logits, input_size, input_dtype, outputs, map_dtype)
    converted = _convert(function, module, mode, representative, verbose)
    model_bytes = _finalise(converted, output_names, outputs, map_dtype, input_dtype, entry)
    ops = _check_graph(model_bytes, mode, input_size, input_dtype, outputs, map_dtype)
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
    _atomic_write({out_path: model_bytes, parity_path: (json.dumps(report, indent=1) + "\n").encode()})
    return ExportResult(path=out_path, parity_path=parity_path, mode=mode, size_bytes=len(model_bytes), ops=ops,
                        metadata=entry, parity=report)


def _atomic_write(files):
    """Writes every {path: bytes} to a temp file in its directory, then os.replace()s them all."""
    temps = []
    umask = os.umask(0)
    os.umask(umask)
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
            temps.append((temp, path))
            os.chmod(temp, 0o666 & ~umask)
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
        for temp, path in temps:
            os.replace(temp, path)
    finally:
        for temp, _ in temps:
            if os.path.exists(temp):
                os.remove(temp)
