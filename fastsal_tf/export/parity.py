"""Running an exported .tflite (LiteRT interpreter) and comparing it with the Keras model: per-output
Pearson CC (fastsal_tf.metrics.pearson) and max |Δ| against PARITY_BOUNDS."""

from __future__ import annotations

import os
import pathlib

import numpy as np

from fastsal_tf.common.console import quiet_stderr
from fastsal_tf.export.flatbuffer import list_ops, read_metadata
from fastsal_tf.export.spec import INPUT_NAME, OUTPUT_NAMES, SIGNATURE_KEY
from fastsal_tf.metrics import pearson

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


def make_interpreter(model, num_threads=2):
    """An ai_edge_litert Interpreter for a .tflite path or bytes, tensors allocated."""
    from ai_edge_litert.interpreter import Interpreter

    with quiet_stderr(python_warnings=True):  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
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
        ccs = [pearson(g, w) for g, w in zip(got, want)]
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
