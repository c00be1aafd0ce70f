"""Latency of exported .tflite models (ai_edge_litert) and of the Keras model under tf.function."""

from __future__ import annotations

import pathlib
import time

import numpy as np


def _summary(times_ms, **extra):
    times = np.asarray(times_ms, np.float64)
    p50 = float(np.percentile(times, 50))
    return {**extra, "runs": int(times.size), "p50_ms": p50, "p90_ms": float(np.percentile(times, 90)),
            "mean_ms": float(times.mean()), "min_ms": float(times.min()), "fps": 1000.0 / p50}


def benchmark_tflite(path, threads=2, runs=100, warmup=10, seed=0):
    """Times `runs` invocations (after `warmup`) of a .tflite on one random input with the ai_edge_litert
    interpreter (XNNPACK, `threads` threads). Returns p50 / p90 / mean / min latency in ms and
    FPS = 1000 / p50."""
    from fastsal_tf.export.parity import make_interpreter

    if runs < 1 or warmup < 0 or threads < 1:
        raise ValueError("runs and threads must be ≥ 1 and warmup ≥ 0")
    path = pathlib.Path(path)
    interpreter = make_interpreter(path, num_threads=threads)
    rng = np.random.default_rng(seed)
    for detail in interpreter.get_input_details():
        shape, dtype = detail["shape"], np.dtype(detail["dtype"])
        if dtype == np.uint8:
            value = rng.integers(0, 256, shape, dtype=np.uint8)
        else:
            value = rng.uniform(0, 255, shape).astype(dtype)
        interpreter.set_tensor(detail["index"], value)
    for _ in range(warmup):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1000.0)
    return _summary(times, model=str(path), size_bytes=path.stat().st_size, threads=int(threads),
                    warmup=int(warmup), runtime="litert")


def set_tf_threads(threads):
    """Sets TF's intra/inter-op thread pools (only possible before TF runs its first op); returns True
    when it took effect."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
        return True
    except RuntimeError:
        return False


def benchmark_keras(model, input_size, threads=2, runs=50, warmup=5, seed=0, output="map"):
    """Times a Keras FastSal model at batch 1 under `tf.function` (graph mode, no XLA), computing the
    sigmoid map (output="map") from its logits, the result fetched to numpy each run."""
    import tensorflow as tf

    from fastsal_tf.export.graph import logits_model

    threads_set = set_tf_threads(threads)
    keras_logits = logits_model(model, input_size)

    @tf.function(input_signature=[tf.TensorSpec((1, *input_size, 3), tf.float32)])
    def run(image):
        logits = keras_logits(image, training=False)
        return tf.math.sigmoid(logits) if output == "map" else logits

    image = tf.constant(np.random.default_rng(seed).uniform(0, 255, (1, *input_size, 3)).astype(np.float32))
    for _ in range(max(1, warmup)):
        run(image).numpy()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(image).numpy()
        times.append((time.perf_counter() - start) * 1000.0)
    return _summary(times, model=model.name, threads=int(threads), threads_applied=threads_set, warmup=int(warmup),
                    runtime="tf.function")
