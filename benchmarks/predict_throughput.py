"""Throughput of `fastsal predict` on the int8 LiteRT model (goal: >= 80 images/s on 2 cores).

Usage: python benchmarks/predict_throughput.py [--work DIR] [--images 500] [--jobs 2] [--model M.tflite]

Makes (once, kept in --work, default /tmp/fastsal_predict_bench) a folder of 640x480 synthetic JPEGs
(seeded: smooth colour blobs plus noise, quality 90) and a FastSal-A int8 .tflite with random weights at the
paper's 192x256 input (fastsal_tf.export.litert.export_tflite(mode="int8") when that works, else the TF
converter; uint8 input; calibrated on 16 of the images). Then runs the job behind `fastsal predict` (grayscale PNG maps at the
original size, PNG compress_level=1, `--jobs` threads) with and without overlays and prints images/s and
where the time goes: per-image thread time in decode (file read + JPEG decode at reduced scale), resize
(network input, and the full-size image for overlays), model (interpreter), map (back to 640x480,
normalised), overlay (colour map + blend) and encode (PNG writes).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import time
import warnings

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_images(folder: pathlib.Path, count: int, size=(480, 640), seed=0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("*.jpg"))
    if len(existing) == count:
        return
    for old in existing:
        old.unlink()
    rng = np.random.default_rng(seed)
    height, width = size
    small = (height // 16, width // 16)
    for i in range(count):
        blobs = Image.fromarray(rng.integers(0, 256, (*small, 3), dtype=np.uint8)).resize((width, height),
                                                                                           Image.Resampling.BICUBIC)
        pixels = np.asarray(blobs, np.int16) + rng.integers(-12, 13, (height, width, 3), dtype=np.int16)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"img_{i:04d}.jpg", quality=90)


def make_int8_model(path: pathlib.Path, images: pathlib.Path) -> str:
    """Random-weight FastSal-A at 192x256 → full-int8 .tflite (uint8 input), calibrated on 16 of the images."""
    if path.exists():
        return "cached"
    import tensorflow as tf

    from fastsal_tf.models import build_fastsal

    model = build_fastsal("A", (192, 256, 3))
    calibration = [np.asarray(Image.open(file).convert("RGB").resize((256, 192)))
                   for file in sorted(images.glob("*.jpg"))[:16]]
    try:
        from fastsal_tf.export.litert import export_tflite
    except ImportError:
        export_tflite = None
    if export_tflite is not None:
        try:
            export_tflite(model, path, mode="int8", outputs=("map", "prob"), representative_images=calibration,
                          check_parity=False)
            return "fastsal_tf.export.litert.export_tflite, mode int8, outputs saliency_map + probability_map"
        except Exception as error:  # noqa: BLE001 — that module is young: fall back, say why
            print(f"export_tflite failed ({type(error).__name__}: {error}); using the TF converter", file=sys.stderr)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None].astype(np.float32)] for image in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path.write_bytes(converter.convert())
    return "tf.lite.TFLiteConverter (int8 body, uint8 input, float outputs)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/fastsal_predict_bench")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--model", help="a .tflite to use instead of the random-weight int8 FastSal-A")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration (best is reported)")
    parser.add_argument("--keras", action="store_true", help="also time the float32 Keras model (batch 8)")
    args = parser.parse_args(argv)

    from fastsal_tf.cli import import_tensorflow_quietly

    import_tensorflow_quietly()
    from fastsal_tf.api import load_model
    from fastsal_tf.predict import runner

    work = pathlib.Path(args.work)
    images = work / "images"
    start = time.perf_counter()
    make_images(images, args.images)
    print(f"images: {args.images} x 640x480 JPEG in {images} ({time.perf_counter() - start:.1f} s)")
    model_path = pathlib.Path(args.model) if args.model else work / "fastsal_a_int8.tflite"
    if not args.model:
        start = time.perf_counter()
        how = make_int8_model(model_path, images)
        print(f"model: {model_path} ({how}, {time.perf_counter() - start:.1f} s)")
    configurations = [(load_model(model_path), False), (load_model(model_path), True)]
    if args.keras:
        keras_path = work / "fastsal_a.keras"
        if not keras_path.exists():
            from fastsal_tf.models import build_fastsal

            build_fastsal("A", (192, 256, 3)).save(keras_path)
        configurations.append((load_model(keras_path), False))
    for predictor, overlay in configurations:
        print(f"backend: {predictor.describe()}; jobs {args.jobs}; cpu cores {os.cpu_count()}")
        best = None
        for _ in range(args.repeats):
            out = work / ("out_overlay" if overlay else "out")
            shutil.rmtree(out, ignore_errors=True)
            items, _ = runner.collect_inputs([images], out)
            cpu_start = os.times()
            summary = runner.run(predictor, items, overlay=overlay, jobs=args.jobs, compress_level=1)
            cpu_end = os.times()
            summary.cpu_seconds = (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)
            assert summary.done == args.images and not summary.failed, summary.failure_text()
            if best is None or summary.images_per_second > best.images_per_second:
                best = summary
        check = Image.open(next(iter(sorted((work / ("out_overlay" if overlay else "out")).glob("*_saliency.png")))))
        assert check.size == (640, 480) and check.mode == "L"
        stages = ", ".join(f"{stage} {1000 * seconds / best.done:.2f}" for stage, seconds in best.timings.items()
                           if seconds > 0)
        busy = sum(best.timings.values())
        print(f"{'with' if overlay else 'without'} overlays: {best.done} images in {best.seconds:.2f} s = "
              f"{best.images_per_second:.1f} images/s")
        print(f"  wall time per image in each stage, summed over threads (ms): {stages}; total "
              f"{1000 * busy / best.done:.2f} ms (= {busy / (best.seconds * args.jobs):.0%} of {args.jobs} threads x "
              f"wall time)")
        cpu = best.cpu_seconds
        print(f"  process CPU time {cpu:.2f} s = {1000 * cpu / best.done:.2f} ms per image; the process got "
              f"{cpu / best.seconds:.2f} cores on average (load average now {os.getloadavg()[0]:.1f}); "
              f"with {args.jobs} cores to itself: {best.done * args.jobs / cpu:.0f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
