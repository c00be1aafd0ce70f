"""Which ops of an exported FastSal .tflite the mobile GPU delegates run, and a GPU-friendly export rewrite.

`gpu_compatibility(model)` lists every op of a .tflite (path or bytes) with its verdict for the TFLite GPU
delegate (`org.tensorflow.lite.gpu.GpuDelegate` on Android, `MetalDelegate` in TensorFlowLiteSwift on
iOS; both build their graph with tensorflow/lite/delegates/gpu/common/model_builder.cc), then partitions
the graph the way the delegate does (TFLite's PartitionGraphIntoIndependentNodeSubsets) and says which
ops end up on the CPU: by default the delegate takes only the largest run of supported ops, so an
unsupported op in the middle of the network leaves everything on one side of it on the CPU.

Why hand-written: TF's own checker, `tf.lite.experimental.Analyzer.analyze(..., gpu_compatibility=True)`,
prints its report from Python (contextlib.redirect_stdout captures it; `tf_analyzer_report` does), but in
the TF 2.21 wheels the GPU check is not compiled in: it calls any model compatible, even ARG_MAX (int64
output) or an int32 CUMSUM, which LiteRT's GPU accelerator rejects. So the rules below are transcribed
from the delegate's sources: the op parsers and their maximum op versions (model_builder.cc), the per-op
constraints (tensorflow/lite/tools/versioning/gpu_compatibility.cc) and the tensor-type rule of
GetOpsToReplace (non-constant tensors float32 / float16, or int8 / uint8 for quantized models; rank < 5).
The op-specific constraints are written out for the ops a FastSal export can contain (plus STRIDED_SLICE,
which the GPU-friendly export uses); any other op gets the op-list, version and tensor-type checks only.

Verdicts for FastSal exports (see BUILD.md, "Android and iOS"): everything is supported except
  - CAST uint8 → float32 at the input (uint8 images): runs on the CPU, before the single GPU partition
    (harmless; `input_dtype="float32"` removes it);
  - GATHER of the PyTorch-order (CRD) pixel shuffle, only in models built for the authors' checkpoints:
    the delegate has no GATHER parser, and the 5 (C) or 8 (A) gathers cut the network into pieces of
    which only the largest runs on the GPU. `gpu_friendly_model` (export option `gpu_friendly=True`,
    `fastsal export --gpu-friendly`, fastsal_tf.export.gpu_friendly) rewrites the gather as r² strided channel slices + one concatenation
    (STRIDED_SLICE, CONCATENATION: both supported), which is the same permutation, bit for bit;
  - ROUND / CAST at the end of a uint8 saliency map: CPU, after the GPU partition.
RESIZE_BILINEAR with align_corners=True (FastSal-C), DEPTH_TO_SPACE and the SOFTMAX over all H·W pixels
of the probability head (a [1, H·W] tensor, i.e. one "pixel" with H·W channels) are supported.

LiteRT's newer GPU accelerator (`CompiledModel` with `Accelerator.GPU`, ML Drift) accepts more, GATHER and
the uint8 CAST included; benchmarks/litert_gpu.py runs a model on it through a software Vulkan device.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import re

import numpy as np

from fastsal_tf.export.flatbuffer import decode_name, model_bytes, read_model

DELEGATE = "TFLite GPU delegate (Android GpuDelegate / iOS MetalDelegate, tensorflow/lite/delegates/gpu)"

# Op → highest op version the delegate's parser accepts (None: no version check), for every op that
# model_builder.cc's NewOperationParser has a parser for. DEQUANTIZE / QUANTIZE only with quantized models
# allowed (the delegates' default).
SUPPORTED_OPS = {
    "ABS": 2, "ADD": 2, "AVERAGE_POOL_2D": 2, "BATCH_MATMUL": None, "CAST": None, "CONCATENATION": 2,
    "CONV_2D": 6, "COS": 2, "CUMSUM": 1, "DENSIFY": 1, "DEPTHWISE_CONV_2D": 6, "DEPTH_TO_SPACE": None,
    "DEQUANTIZE": 3, "DIV": 2, "ELU": 2, "EQUAL": 2, "EXP": 2, "FLOOR": 2, "FLOOR_DIV": 2, "FLOOR_MOD": 2,
    "FULLY_CONNECTED": 9, "GREATER": 2, "GREATER_EQUAL": 2, "HARD_SWISH": None, "LEAKY_RELU": 2, "LESS": 2,
    "LESS_EQUAL": 2, "LOG": 2, "LOGISTIC": 2, "LSTM": 4, "MAXIMUM": 2, "MAX_POOL_2D": 2, "MEAN": None,
    "MINIMUM": 2, "MIRROR_PAD": 2, "MUL": 3, "NEG": 2, "NOT_EQUAL": 2, "ONE_HOT": 1, "PACK": None, "PAD": 2,
    "POW": 2, "PRELU": 1, "QUANTIZE": 2, "REDUCE_MAX": None, "REDUCE_MIN": None, "REDUCE_PROD": None,
    "RELU": 2, "RELU6": 2, "RELU_N1_TO_1": None, "RESHAPE": 1, "RESIZE_BILINEAR": 3,
    "RESIZE_NEAREST_NEIGHBOR": 3, "RSQRT": 2, "SELECT_V2": 1, "SIN": 2, "SLICE": 2, "SOFTMAX": 2,
    "SPACE_TO_DEPTH": 2, "SPLIT": None, "SPLIT_V": None, "SQRT": 2, "SQUARE": 2, "SQUARED_DIFFERENCE": 2,
    "STRIDED_SLICE": 2, "SUB": 2, "SUM": None, "TANH": 2, "TILE": None, "TRANSPOSE": None,
    "TRANSPOSE_CONV": None,
}
QUANT_ONLY_OPS = {"DEQUANTIZE", "QUANTIZE"}

FLOAT_TYPES = {"FLOAT32", "FLOAT16"}
QUANT_TYPES = {"INT8", "UINT8"}


@dataclasses.dataclass
class OpVerdict:
    index: int           # operator index in subgraph 0 (execution order)
    op: str              # builtin name, e.g. "CONV_2D"
    version: int
    supported: bool      # the delegate accepts this node
    reason: str          # why not ("" when supported)
    on_gpu: bool = False  # in the partition the delegate takes


@dataclasses.dataclass
class GpuReport:
    """Result of `gpu_compatibility`. verdict: "full" (every op on the GPU), "edge_fallback" (one GPU
    partition; the unsupported ops run on the CPU before / after it), "split" (the unsupported ops cut
    the graph: supported ops outside the largest partition run on the CPU too) or "none"."""

    ops: list                 # OpVerdict per operator (fp16 weight DEQUANTIZEs excluded, see fp16_weights)
    partitions: list          # [(on_gpu_type: bool, [op indices])] in the delegate's order
    verdict: str
    fp16_weights: int = 0     # DEQUANTIZE nodes of float16 constants: folded into the GPU weights
    tf_analyzer: dict | None = None

    @property
    def unsupported(self):
        return sorted({v.op for v in self.ops if not v.supported})

    @property
    def cpu_ops(self):
        """{op: count} of the ops that would run on the CPU."""
        return dict(sorted(collections.Counter(v.op for v in self.ops if not v.on_gpu).items()))

    @property
    def gpu_partitions(self):
        return sum(1 for supported, _ in self.partitions if supported)

    def summary(self):
        """{op: {"count", "versions", "supported", "on_gpu", "reasons"}}, by op name."""
        table = {}
        for v in self.ops:
            entry = table.setdefault(v.op, {"count": 0, "versions": set(), "supported": 0, "on_gpu": 0,
                                            "reasons": set()})
            entry["count"] += 1
            entry["versions"].add(v.version)
            entry["supported"] += v.supported
            entry["on_gpu"] += v.on_gpu
            if v.reason:
                entry["reasons"].add(v.reason)
        return {op: {**e, "versions": sorted(e["versions"]), "reasons": sorted(e["reasons"])}
                for op, e in sorted(table.items())}

    def to_dict(self):
        gpu_nodes = sum(v.on_gpu for v in self.ops)
        return {"delegate": DELEGATE, "verdict": self.verdict, "total_nodes": len(self.ops),
                "gpu_nodes": gpu_nodes, "gpu_partitions": self.gpu_partitions, "unsupported": self.unsupported,
                "cpu_ops": self.cpu_ops, "fp16_weight_dequantize_nodes": self.fp16_weights,
                "ops": self.summary(), "tf_analyzer": self.tf_analyzer}

    def format(self):
        """A plain-text table: op, count, versions, GPU verdict."""
        lines = [f"{DELEGATE}: {self.verdict} ({sum(v.on_gpu for v in self.ops)}/{len(self.ops)} nodes on the "
                 f"GPU, {self.gpu_partitions} GPU partition(s))"]
        for op, e in self.summary().items():
            if e["supported"] == e["count"]:
                state = "GPU" if e["on_gpu"] == e["count"] else f"supported, {e['count'] - e['on_gpu']} on CPU"
            else:
                state = "CPU: " + "; ".join(e["reasons"])
            lines.append(f"  {op:18s} x{e['count']:<4d} v{','.join(map(str, e['versions'])):5s} {state}")
        if self.fp16_weights:
            lines.append(f"  ({self.fp16_weights} DEQUANTIZE of float16 weights: folded into the GPU weights)")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------- the check

def gpu_compatibility(model, allow_quant_ops=True, max_delegated_partitions=1, analyzer=False):
    """Per-op GPU-delegate verdicts of a .tflite (path or bytes) → GpuReport (see the module docstring).

    allow_quant_ops: the delegate runs int8 / uint8 models by dequantizing (default on Android and iOS).
    max_delegated_partitions: how many GPU partitions the delegate takes (its default is 1).
    analyzer: also run TF's Analyzer and attach its (unreliable in TF 2.21) verdict as `tf_analyzer`."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    data = model_bytes(model)
    model_object = read_model(data)
    if len(model_object.subgraphs) != 1:
        raise ValueError(f"expected a single-subgraph model, got {len(model_object.subgraphs)} subgraphs")
    subgraph = model_object.subgraphs[0]
    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    tensors = subgraph.tensors
    operators = list(subgraph.operators or [])

    def is_const(index):
        buffer = model_object.buffers[tensors[index].buffer] if tensors[index].buffer else None
        return buffer is not None and ((buffer.data is not None and len(buffer.data) > 0)
                                       or (getattr(buffer, "offset", 0) or 0) > 1)

    def code(op):
        opcode = model_object.operatorCodes[op.opcodeIndex]
        builtin = flatbuffer_utils.get_builtin_code_from_operator_code(opcode)
        if builtin == schema.BuiltinOperator.CUSTOM:
            return decode_name(opcode.customCode or b"CUSTOM"), opcode.version
        return op_names.get(builtin, f"BUILTIN_{builtin}"), opcode.version

    # float16 weights: DEQUANTIZE(const fp16) → float32 is folded by the delegate (FP16GraphPartitionHelper);
    # its output counts as a constant and the node takes no part in the partitioning.
    constant = {i for i in range(len(tensors)) if is_const(i)}
    folded = set()
    for index, op in enumerate(operators):
        name, _ = code(op)
        if name == "DEQUANTIZE" and op.inputs[0] in constant and type_names[tensors[op.inputs[0]].type] == "FLOAT16":
            folded.add(index)
            constant.update(op.outputs)

    context = _Context(tensors, type_names, constant, operators, code, model_object.buffers)
    verdicts = []
    for index, op in enumerate(operators):
        if index in folded:
            continue
        name, version = code(op)
        reason = _check_node(context, index, op, name, version, allow_quant_ops)
        verdicts.append(OpVerdict(index, name, int(version), not reason, reason))

    by_index = {v.index: v for v in verdicts}
    partitions = _partition([v.index for v in verdicts], operators, constant, {v.index: v.supported for v in verdicts})
    gpu_parts = sorted((p for p in partitions if p[0]), key=lambda p: -len(p[1]))[:max(0, max_delegated_partitions)]
    for _, nodes in gpu_parts:
        for index in nodes:
            by_index[index].on_gpu = True
    if not any(v.on_gpu for v in verdicts):
        verdict = "none"
    elif all(v.on_gpu for v in verdicts):
        verdict = "full"
    elif all(v.on_gpu for v in verdicts if v.supported):
        verdict = "edge_fallback"
    else:
        verdict = "split"
    report = GpuReport(ops=verdicts, partitions=partitions, verdict=verdict, fp16_weights=len(folded))
    if analyzer:
        report.tf_analyzer = tf_analyzer_report(data)
    return report


class _Context:
    def __init__(self, tensors, type_names, constant, operators, code, buffers):
        self.tensors, self.type_names, self.constant = tensors, type_names, constant
        self.operators, self.code, self.buffers = operators, code, buffers
        self.producer = {t: i for i, op in enumerate(operators) for t in op.outputs}

    def const_ints(self, index):
        """The values of a constant int32 tensor (None when it is not one)."""
        buffer = self.buffers[self.tensors[index].buffer] if self.tensors[index].buffer else None
        if self.type(index) != "INT32" or buffer is None or buffer.data is None:
            return None
        return np.frombuffer(bytes(np.asarray(buffer.data, np.uint8)), np.int32).tolist()

    def type(self, index):
        return self.type_names[self.tensors[index].type]

    def dims(self, index):
        shape = self.tensors[index].shape
        return [] if shape is None else [int(v) for v in shape]

    def runtime_inputs(self, op):
        return [i for i in op.inputs if i >= 0 and i not in self.constant]

    def const_inputs(self, op):
        return [i for i in op.inputs if i >= 0 and i in self.constant]


_SUPPORTED_ACTIVATIONS = {0, 1, 2, 3, 4}  # NONE, RELU, RELU_N1_TO_1, RELU6, TANH (not SIGN_BIT)
_LOGICAL_OPS = {"EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL", "NOT_EQUAL", "LOGICAL_AND"}


def _check_node(ctx, index, op, name, version, allow_quant_ops):
    """"" when the delegate accepts the node, else the reason (the delegate's own wording where it has one)."""
    if name not in SUPPORTED_OPS or (name in QUANT_ONLY_OPS and not allow_quant_ops):
        return "Operation is not supported."
    limit = SUPPORTED_OPS[name]
    if limit is not None and version > limit:
        return f"Max version supported: {limit}. Requested version {version}."
    reason = _op_constraints(ctx, op, name)
    if reason:
        return reason
    # GetOpsToReplace: every non-constant input / output tensor of an allowed type, rank < 5.
    allowed_in, allowed_out = set(FLOAT_TYPES), set(FLOAT_TYPES)
    if allow_quant_ops:
        allowed_in |= QUANT_TYPES
        allowed_out |= QUANT_TYPES
    if name in _LOGICAL_OPS:
        allowed_out.add("BOOL")
    if name == "CAST":
        allowed_in |= {"BOOL", "FLOAT32", "INT32"}
        allowed_out |= {"FLOAT32", "INT32"}
    for tensor_list, allowed in ((op.inputs, allowed_in), (op.outputs, allowed_out)):
        for t in tensor_list:
            if t < 0:
                continue
            if len(ctx.dims(t)) >= 5 or (t not in ctx.constant and ctx.type(t) not in allowed):
                return "OP is supported, but tensor type/shape isn't compatible."
    return ""


def _activation_ok(options):
    activation = getattr(options, "fusedActivationFunction", 0) if options is not None else 0
    return "" if activation in _SUPPORTED_ACTIVATIONS else f"TfLiteFusedActivation {activation} is not supported."


def _broadcast_ok(a, b):
    """gpu_compatibility.cc CheckAddMulBroadcastCompatibility (standard flags)."""
    if len(a) > 1 and len(b) > 1 and len(a) != len(b):
        longer, shorter = (a, b) if len(a) >= len(b) else (b, a)
        ok = (len(longer) == 4 and len(shorter) == 3 and longer[0] == 1) or \
             (len(longer) == 4 and len(shorter) == 2 and longer[0] == 1 and shorter == [1, 1]) or \
             (len(longer) == 4 and len(shorter) == 2 and longer[0] == shorter[0] and longer[3] == shorter[1])
        if not ok:
            return f"Doesn't support broadcasting - input0: {a}, input1: {b}"
    return ""


def _op_constraints(ctx, op, name):
    """The per-op rules of gpu_compatibility.cc (and the parsers) for the ops FastSal exports contain."""
    options = op.builtinOptions
    runtime = ctx.runtime_inputs(op)
    if name in ("ADD", "MUL"):
        if len(op.inputs) != 2:
            return f"{name} requires two input tensors."
        a, b = ctx.dims(op.inputs[0]), ctx.dims(op.inputs[1])
        if name == "MUL" and len(a) == len(b):
            if any(x < y for x, y in zip(a, b)) and any(y < x for x, y in zip(a, b)):
                return "MUL requires one tensor that not less than second in all dimensions."
        elif (reason := _broadcast_ok(a, b)):
            return reason
        return _activation_ok(options)
    if name == "CAST":
        if len(runtime) != 1:
            return f"Expected 1 runtime input tensor(s), but node has {len(runtime)} runtime input(s)."
        src, dst = ctx.type(op.inputs[0]), ctx.type(op.outputs[0])
        ok = (src == "BOOL" and dst in FLOAT_TYPES) or (src in FLOAT_TYPES and dst == "BOOL") or \
             (src in ("FLOAT32", "INT32") and dst in ("FLOAT32", "INT32"))
        if src == "BOOL" and ok:
            producer = ctx.producer.get(op.inputs[0])
            ok = producer is not None and ctx.code(ctx.operators[producer])[0] in _LOGICAL_OPS
        return "" if ok else f"Not supported Cast case. Input type: {src} and output type: {dst}"
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"):
        if len(runtime) > 2:
            return f"Expected 1 or 2 input tensor(s), but node has {len(runtime)} runtime inputs."
        if options is not None:
            if min(getattr(options, "strideH", 1), getattr(options, "strideW", 1)) <= 0:
                return "Incorrect stride values"
            if min(getattr(options, "dilationHFactor", 1), getattr(options, "dilationWFactor", 1)) <= 0:
                return "Incorrect dilation values"
        if name == "DEPTHWISE_CONV_2D":
            x, w, y = ctx.dims(op.inputs[0]), ctx.dims(op.inputs[1]), ctx.dims(op.outputs[0])
            multiplier = getattr(options, "depthMultiplier", 1) or 1
            if len(x) != 4 or len(w) != 4 or len(y) != 4:
                return "input / filter / output dims.size != 4"
            if w[3] != y[3]:
                return "filter.i != output.c"
            if y[3] != x[3] * multiplier:
                return "output.c != input.c * depth_multiplier"
            if multiplier != 1 and x[3] != 1:
                return "depth_multiplier != 1 && input.c != 1"
        return _activation_ok(options)
    if name == "DEPTH_TO_SPACE":
        block = getattr(options, "blockSize", 0)
        return "" if block > 1 else f"DEPTH_TO_SPACE block_size must be > 1 (got {block})."
    if name == "DEQUANTIZE":
        return "Unsupported dequantization type." if ctx.type(op.inputs[0]) == "INT16" else ""
    if name in ("LOGISTIC", "TANH", "EXP", "LOG", "RSQRT", "SQRT", "SQUARE", "ABS", "NEG", "SIN", "COS",
                "ELU", "FLOOR"):
        if len(runtime) != 1 or ctx.const_inputs(op):
            return "Expected 1 runtime input tensor(s) and 0 constant input(s)."
        return ""
    if name in ("PAD", "MIRROR_PAD"):
        if len(runtime) != 1:
            return f"Expected 1 runtime input tensor(s), but node has {len(runtime)} runtime input(s)."
        pads = ctx.dims(op.inputs[1]) if len(op.inputs) > 1 else []
        if len(pads) != 2 or pads[0] not in (3, 4) or pads[1] != 2:
            return f"Invalid paddings tensor shape: expected 4x2 or 3x2, got {pads}"
        if name == "MIRROR_PAD" and getattr(options, "mode", 0) != 0:
            return "Only Reflective padding is supported for Mirror Pad operation."
        return ""
    if name == "RESHAPE":
        if len(runtime) != 1:
            return f"Expected 1 runtime input tensor(s), but node has {len(runtime)} runtime input(s)."
        return ""
    if name in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        if len(runtime) != 1:
            return f"Expected 1 runtime input tensor(s), but node has {len(runtime)} runtime input(s)."
        if name == "RESIZE_BILINEAR" and getattr(options, "alignCorners", False) and \
                getattr(options, "halfPixelCenters", False):
            return "If half_pixel_centers is True, align_corners must be False."
        return ""
    if name == "SOFTMAX":
        beta = getattr(options, "beta", 1.0) if options is not None else 1.0
        return "" if beta == 1 else "Softmax.beta != 1 is not supported."
    if name == "STRIDED_SLICE":
        if options is not None:
            for mask in ("ellipsisMask", "newAxisMask", "shrinkAxisMask"):
                if getattr(options, mask, 0):
                    return f"Slice does not support {mask}."
        if len(op.inputs) < 4:
            return "STRIDED_SLICE requires 4 inputs."
        if len(ctx.dims(op.inputs[0])) not in (3, 4):
            return "STRIDED_SLICE supports for 3 or 4 dimensional tensors only."
        strides = ctx.const_ints(op.inputs[3])
        if strides is not None and any(s <= 0 for s in strides):
            return "Reverse slices are not supported."
        return ""
    return ""


def _partition(nodes, operators, constant, supported):
    """TFLite's PartitionGraphIntoIndependentNodeSubsets: alternating subsets of supported / unsupported
    nodes, each grown greedily with every node whose inputs are ready. → [(supported, [node indices])]."""
    produced = {t for i in nodes for t in operators[i].outputs}
    ready = set()
    done = set()
    subsets = []
    while True:
        kind, members = None, []
        changed = True
        while changed:
            changed = False
            for i in nodes:
                if i in done:
                    continue
                inputs = [t for t in operators[i].inputs if t >= 0 and t not in constant]
                if any(t in produced and t not in ready for t in inputs):
                    continue
                if kind is None:
                    kind = supported[i]
                if supported[i] == kind:
                    members.append(i)
                    done.add(i)
                    ready.update(operators[i].outputs)
                    changed = True
        if not members:
            return subsets
        subsets.append((bool(kind), members))


# ------------------------------------------------------------------------------------- TF's Analyzer

_ANALYZER_OP = re.compile(r"^\s*Op#(\d+) (\w+)\(")
_ANALYZER_WARNING = "GPU COMPATIBILITY WARNING:"


def tf_analyzer_report(model):
    """TF's own checker: `tf.lite.experimental.Analyzer.analyze(model_content=..., gpu_compatibility=True)`.
    It prints from Python, so redirect_stdout captures the text. Returns {"compatible": bool, "warnings":
    [{"index", "op", "message"}]}. Informational: in the TF 2.21 wheels its GPU check is not compiled in
    and it calls every model compatible (see the module docstring)."""
    import tensorflow as tf

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_content=model_bytes(model), gpu_compatibility=True)
    warnings, last = [], None
    for line in text.getvalue().splitlines():
        match = _ANALYZER_OP.match(line)
        if match:
            last = (int(match.group(1)), match.group(2))
        elif line.startswith(_ANALYZER_WARNING) and last is not None:
            warnings.append({"index": last[0], "op": last[1], "message": line[len(_ANALYZER_WARNING):].strip()})
    compatible = "looks compatible" in text.getvalue() or "looks compatibile" in text.getvalue()
    return {"compatible": compatible and not warnings, "warnings": warnings}
