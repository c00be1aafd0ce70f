"""Full-int8 quantisation with a float tail: calibration statistics over all representative images, the
MLIR quantizer with per-channel weights, and bias correction of the int8 convolutions."""

from __future__ import annotations

import os

import numpy as np

from fastsal_tf.export.flatbuffer import decode_name, pack_model
from fastsal_tf.export.spec import TAIL_PREFIX, ExportError


def quantize_int8(calibrated, representative):
    """Calibrated float model → int8 model with the float tail: own calibration statistics over all the
    representative images (`calibrate`), the MLIR quantizer (per-channel weights, `quantize_with_float_tail`)
    and bias correction of every int8 convolution (`correct_biases`)."""
    statistics, input_means = calibrate(calibrated, representative)
    quantized = quantize_with_float_tail(statistics)
    return correct_biases(statistics, quantized, input_means)


def quantize_with_float_tail(calibrated):
    """Quantizes a calibrated model to int8, keeping the float tail (sigmoid, softmax, reshapes, uint8
    rounding) and the graph outputs in float32: the logits are dequantized before the tail."""
    from ai_edge_litert.tools import flatbuffer_utils
    from tensorflow.lite.python import convert as tflite_convert

    model = flatbuffer_utils.convert_bytearray_to_object(calibrated)
    subgraph = model.subgraphs[0]
    names = [decode_name(t.name) for t in subgraph.tensors]
    denylist = {name for name in names if name.startswith(TAIL_PREFIX)} | {names[i] for i in subgraph.outputs}
    return tflite_convert.mlir_quantize(calibrated, disable_per_channel=False, fully_quantize=False,
                                        denylisted_nodes=sorted(denylist))


def calibrate(calibrated, representative):
    """Fills the calibration statistics (min / max of every float activation) of the calibrated model
    from all the representative images, and returns (model bytes, {tensor index: per-channel mean}) with
    the mean of every convolution input over the images (for `correct_biases`).

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
            raise ExportError(f"int8 calibration: no finite range for tensor {decode_name(subgraph.tensors[index].name)!r}")
        subgraph.tensors[index].quantization.min = [low[index]]
        subgraph.tensors[index].quantization.max = [high[index]]
    return pack_model(model), {index: total / len(representative) for index, total in sums.items()}


def correct_biases(calibrated, quantized, input_means):
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
    float_ops = {decode_name(float_graph.tensors[op.outputs[0]].name): op for op in float_graph.operators}
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
        float_op = float_ops.get(decode_name(graph.tensors[op.outputs[0]].name))
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
    return pack_model(model)
