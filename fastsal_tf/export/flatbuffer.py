"""Reading and editing .tflite flatbuffers: op lists, the embedded FastSal metadata, the SignatureDef and
tensor names an export adds, and the graph checks (builtin ops only, fixed shapes, float tail)."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from fastsal_tf.export.spec import (INPUT_NAME, METADATA_NAME, OUTPUT_NAMES, SIGNATURE_KEY, ExportError,
                                    UnsupportedOpsError)


def decode_name(name):
    """A flatbuffer string (bytes or str) as str."""
    return name.decode() if isinstance(name, bytes) else str(name)



def read_model(model_bytes):
    from ai_edge_litert.tools import flatbuffer_utils

    return flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))


def pack_model(model_object):
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


def op_names(model_object):
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
            result.append((decode_name(opcode.customCode or b"CUSTOM"), False))
        else:
            result.append((codes.get(code, f"BUILTIN_{code}"), code in codes))
    return result


def list_ops(model):
    """Sorted names of the ops a .tflite model uses (path or bytes). Custom / Flex ops appear under their
    custom code (e.g. 'FlexErfinv')."""
    return sorted({name for name, _ in op_names(read_model(model_bytes(model)))})


def read_metadata(model):
    """The FastSal JSON metadata embedded in a .tflite (path or bytes) as a dict; ValueError if absent."""
    model_object = read_model(model_bytes(model))
    for entry in model_object.metadata or []:
        if decode_name(entry.name) == METADATA_NAME:
            data = model_object.buffers[entry.buffer].data
            return json.loads(bytes(np.asarray(data, np.uint8)).decode("utf-8"))
    raise ValueError(f"{describe_source(model)} has no {METADATA_NAME!r} metadata entry")


def model_bytes(model):
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    return pathlib.Path(model).read_bytes()


def describe_source(model):
    return "the model" if isinstance(model, (bytes, bytearray, memoryview)) else str(model)


def add_signature_and_metadata(model_bytes, output_names, outputs, map_dtype, input_dtype, metadata):
    """Adds the SignatureDef ("serving_default": "image" → the named outputs), names the tensors after it,
    orders the outputs, fixes the int8 input quantisation to the exact 0–255 range, annotates the uint8
    map and embeds the metadata. output_names: {converted output tensor name: signature name}."""
    from ai_edge_litert import schema_py_generated as schema

    model_object = read_model(model_bytes)
    if len(model_object.subgraphs) != 1:
        raise ExportError(f"the converted model has {len(model_object.subgraphs)} subgraphs, expected 1")
    subgraph = model_object.subgraphs[0]
    if len(subgraph.inputs) != 1:
        raise ExportError(f"the converted model has {len(subgraph.inputs)} inputs, expected 1")
    found = {}
    for index in subgraph.outputs:
        name = output_names.get(decode_name(subgraph.tensors[index].name))
        if name is None:
            raise ExportError(f"cannot match converted output {decode_name(subgraph.tensors[index].name)!r} to "
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
        exact_input_quantization(model_object, subgraph, subgraph.inputs[0])
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata, indent=1, sort_keys=True).encode("utf-8"), np.uint8)
    model_object.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model_object.buffers) - 1
    model_object.metadata = [m for m in (model_object.metadata or []) if decode_name(m.name) != METADATA_NAME] + [entry]
    return pack_model(model_object)


def signature_tensor(entries, name):
    return next(entry.tensorIndex for entry in entries if decode_name(entry.name) == name)


def exact_input_quantization(model_object, subgraph, input_index):
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


def check_graph(model_bytes, mode, input_size, input_dtype, outputs, map_dtype):
    """Builtin ops only, fixed batch-1 input, expected dtypes; an int8 model's tail is float."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model_object = read_model(model_bytes)
    ops = op_names(model_object)
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
        tensor = subgraph.tensors[signature_tensor(model_object.signatureDefs[0].outputs, OUTPUT_NAMES[name])]
        want = schema.TensorType.UINT8 if (name == "map" and map_dtype == "uint8") else schema.TensorType.FLOAT32
        if tensor.type != want or [int(v) for v in tensor.shape] != [1, *input_size, 1]:
            raise ExportError(f"output {OUTPUT_NAMES[name]!r} is type {tensor.type} shape {list(tensor.shape)}")
    return sorted({name for name, _ in ops})
