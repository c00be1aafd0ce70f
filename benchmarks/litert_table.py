"""Latency table: Keras/TF (tf.function) vs LiteRT fp32 / fp16 / dynamic-range int8 / full int8 for
FastSal-A and -C at batch 1, as markdown.

Usage: python benchmarks/litert_table.py [--variants A,C] [--size 192x256] [--threads 2] [--runs 50]
       [--representative DIR] [--out-dir DIR] [--markdown FILE] [--json FILE]

Models: TF_NATIVE FastSal (TF padding, DCR pixel shuffle) with well-conditioned random weights
(fastsal_tf.export.random_weights) unless --weights-A / --weights-C give .keras files. Exports: uint8 RGB
input, the saliency map output (float32), parity against Keras on 8 held-out images (recorded, not
enforced). Representative images: the first --num-representative images of DIR (default: the OSIE
stimuli in ../shared when present, else synthetic images). LiteRT runs with ai_edge_litert (XNNPACK).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OSIE = ROOT.parent / "shared" / "data" / "osie" / "data" / "stimuli"
MODES = ("fp32", "fp16", "dynamic", "int8")


def cpu_name():
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def cpu_flags():
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return ""
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni"]
    return ", ".join(flag for flag in wanted if flag in flags)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="A,C")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--size", default="192x256")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=50, help="timed LiteRT runs (default 50)")
    parser.add_argument("--keras-runs", type=int, default=20, help="timed tf.function runs (default 20)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--representative", default=str(OSIE) if OSIE.is_dir() else None)
    parser.add_argument("--num-representative", type=int, default=200)
    parser.add_argument("--weights-A", dest="weights_A", help="a .keras FastSal-A (default: random weights)")
    parser.add_argument("--weights-C", dest="weights_C", help="a .keras FastSal-C (default: random weights)")
    parser.add_argument("--out-dir", help="where the .tflite files go (default: a temporary directory)")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--json", help="also write all numbers to this JSON file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from fastsal_tf.cli import import_tensorflow_quietly

    import_tensorflow_quietly()
    from fastsal_tf.export.benchmark import set_tf_threads

    set_tf_threads(args.threads)  # before TF runs any op
    import keras
    import numpy as np

    from fastsal_tf.cli.arguments import parse_size
    from fastsal_tf.export import export_tflite
    from fastsal_tf.export.benchmark import benchmark_keras, benchmark_tflite
    from fastsal_tf.export.images import load_images, synthetic_images
    from fastsal_tf.export.random_weights import randomize_weights
    from fastsal_tf.models import TF_NATIVE, build_fastsal

    size = parse_size(args.size)
    held_out = 8
    if args.representative:
        images = load_images(args.representative, size, args.num_representative + held_out)
        source = f"{len(images) - held_out} images of {args.representative}"
    else:
        images = synthetic_images(args.num_representative + held_out, size)
        source = f"{len(images) - held_out} synthetic images"
    representative, validation = images[:-held_out], images[-held_out:]
    out_dir = pathlib.Path(args.out_dir or tempfile.mkdtemp(prefix="fastsal_litert_table_"))
    out_dir.mkdir(parents=True, exist_ok=True)

    rows, records = [], []
    for index, variant in enumerate(args.variants.split(",")):
        weights = getattr(args, f"weights_{variant}", None)
        if weights:
            model = keras.saving.load_model(weights)
            origin = weights
        else:
            model = randomize_weights(build_fastsal(variant, (*size, 3), **TF_NATIVE), representative[:16], seed=index)
            origin = "random weights (TF_NATIVE)"
        keras_mb = sum(int(np.prod(w.shape)) for w in model.weights) * 4 / 1e6
        result = benchmark_keras(model, size, args.threads, runs=args.keras_runs, warmup=max(3, args.warmup // 2))
        rows.append([f"FastSal-{variant}", "Keras/TF tf.function (fp32)", f"{keras_mb:.2f}", result["p50_ms"],
                     result["p90_ms"], result["fps"], "reference"])
        records.append({"variant": variant, "runtime": "keras", "weights": origin, **result})
        print(f"{variant} keras: p50 {result['p50_ms']:.1f} ms", file=sys.stderr, flush=True)
        for mode in args.modes.split(","):
            path = out_dir / f"fastsal_{variant}_{mode}.tflite"
            exported = export_tflite(model, path, mode=mode, input_size=size, input_dtype="uint8", outputs=("map",),
                                     representative_images=representative if mode == "int8" else None,
                                     validation_images=validation, check_parity=False,
                                     num_threads=args.threads,
                                     metadata={"training_data": "none (random weights, benchmark only)"}
                                     if not weights else None)
            timing = benchmark_tflite(path, threads=args.threads, runs=args.runs, warmup=args.warmup)
            parity = exported.parity["outputs"]["saliency_map"]
            verdict = "pass" if exported.parity["passed"] else "FAIL"
            rows.append([f"FastSal-{variant}", f"LiteRT {mode}", f"{exported.size_bytes / 1e6:.2f}", timing["p50_ms"],
                         timing["p90_ms"], timing["fps"],
                         f"{parity['cc_mean']:.5f} / {parity['cc_min']:.5f} ({verdict})"])
            records.append({"variant": variant, "runtime": f"litert-{mode}", "weights": origin, "path": str(path),
                            "parity": exported.parity, **timing})
            print(f"{variant} {mode}: p50 {timing['p50_ms']:.2f} ms, {exported.size_bytes / 1e6:.2f} MB, map CC "
                  f"{parity['cc_mean']:.5f}", file=sys.stderr, flush=True)

    import ai_edge_litert
    import tensorflow as tf

    load = os.getloadavg()
    header = (f"FastSal {size[0]}×{size[1]}, batch 1, {args.threads} threads, uint8 RGB input, saliency-map "
              f"output. CPU: {cpu_name()} ({os.cpu_count()} logical CPUs; {cpu_flags()}). TensorFlow "
              f"{tf.__version__}, ai-edge-litert {getattr(ai_edge_litert, '__version__', '?')}. Weights: "
              f"{records[0]['weights']}. int8 calibration: {source}. Load average at the end: "
              f"{load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}. LiteRT: {args.runs} runs after {args.warmup} warm-up; "
              f"Keras: {args.keras_runs} runs. FPS = 1000 / p50. CC: saliency map vs Keras on {held_out} held-out "
              f"images, mean / min.")
    lines = [header, "", "| Model | Runtime | Size (MB) | p50 (ms) | p90 (ms) | FPS | CC vs Keras (mean / min) |",
             "|---|---|---:|---:|---:|---:|---|"]
    for name, runtime, megabytes, p50, p90, fps, cc in rows:
        lines.append(f"| {name} | {runtime} | {megabytes} | {p50:.2f} | {p90:.2f} | {fps:.1f} | {cc} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.markdown:
        pathlib.Path(args.markdown).write_text(table)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"header": header, "records": records}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
