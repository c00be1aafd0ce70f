"""Our models against the authors' FastSal ONNX under ONNX Runtime and OpenVINO, side by side in one process.

Usage: python benchmarks/speed_vs_reference.py [--threads 2] [--rounds 20] [--runs 10] [--json]
       [--reference-dir ../shared/reference/onnx] [--work /tmp/fastsal_speed_vs_reference]
Needs the benchmark extras: pip install -e '.[bench]' (onnxruntime, openvino). With nncf installed
(pip install nncf; not an extra) it also times the authors' A and C quantised to int8 by OpenVINO's own tool.

Contestants, batch 1 at 192x256, `--threads` threads each:
  the authors' A and C ONNX (random weights; speed does not depend on them) under ONNX Runtime (CPU provider)
  and OpenVINO (CPU, its default inference precision and f32), timed on a normalised NCHW float32 tensor;
  with nncf, also OpenVINO on the ONNX quantised by nncf.quantize (int8 weights and activations, calibrated
  on CALIBRATION_FRAMES random frames: the best int8 OpenVINO offers for the network, the bound on what an
  int8 runtime gains over its bf16);
  our models as `fastsal predict` calls them: `Backend.run` on one uint8 frame (the model's outputs as
  predict reads them, dequantisation and the host-side probability map included), for every shipped model
  with every installed runtime that runs it (fastsal_tf.runtime.resolve.RUNTIMES), plus FastSal-C int8 and
  A ("fast") / C fp32 exports of the shipped weights made with the current export code (cached in --work; int8
  calibrated on OSIE images when ../shared/data/osie is there, parity not enforced: they are for timing).
  A model built at another size (the default FastSal-A, 352x480) runs on a frame of its own size; its rows
  say the size and take no part in the goals, which compare the networks at the authors' 192x256.
Rounds are interleaved (each round runs every contestant `--runs` times, in a rotated order). Prints the
median per call, the p10–p90 spread, the ratios to the reference of the same variant and the issue's goals;
`--json` prints one JSON object instead. Says when the machine was not idle: the 1-minute load average
when the script started (before its own exports) and the CPU time other processes took while it timed
(from /proc/stat).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import pathlib
import sys
import time
from typing import Callable

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INPUT_HW = (192, 256)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
# Goals of issue 16: (ours, reference, least ratio reference / ours).
GOALS = (("A int8 LiteRT (predict)", "authors A ONNX Runtime", 4.0),
         ("A int8 LiteRT (predict)", "authors A OpenVINO default", 1.5),
         ("A fastest fp32-accurate", "authors A OpenVINO f32", 1.0),
         ("C int8 LiteRT (predict)", "authors C ONNX Runtime", 8.0))
CALIBRATION_FRAMES = 8  # random frames nncf calibrates the authors' int8 ONNX on (speed does not depend on them)
OTHER_CORES_IDLE = 0.25  # other processes' mean CPU use (cores) above which the run is called not idle


@dataclasses.dataclass
class Contestant:
    name: str
    variant: str
    call: Callable[[], object]
    fp32_accurate: bool = False
    authors_size: bool = True  # runs at the authors' 192x256 (only those rows count for the goals)
    times_ms: list = dataclasses.field(default_factory=list)


# ------------------------------------------------------------------------------------------------ references

def reference_contestants(reference_dir: pathlib.Path, threads: int, frame: np.ndarray) -> list[Contestant]:
    import onnxruntime as ort
    import openvino as ov

    tensor = ((frame.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)[None].copy()
    core = ov.Core()
    contestants = []
    for variant in ("A", "C"):
        path = reference_dir / f"authors_fastsal_{variant}_random.onnx"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the authors' ONNX is missing (see ../shared/reference/onnx/README.md)")
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: tensor}
        contestants.append(Contestant(f"authors {variant} ONNX Runtime", variant,
                                      lambda s=session, f=feed: s.run(None, f)))
        runs = [("default", str(path), {}), ("f32", str(path), {"INFERENCE_PRECISION_HINT": "f32"})]
        quantised = _nncf_int8(core, path, tensor.shape)
        if quantised is not None:
            runs.append(("int8 (NNCF)", quantised, {}))
        for label, model, extra in runs:
            compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                         "PERFORMANCE_HINT": "LATENCY", **extra})
            request = compiled.create_infer_request()
            contestants.append(Contestant(f"authors {variant} OpenVINO {label}", variant,
                                          lambda r=request: r.infer({0: tensor}), fp32_accurate=label == "f32"))
    return contestants


def _nncf_int8(core, path: pathlib.Path, shape: tuple):
    """The ONNX at path as an OpenVINO model quantised by nncf (int8, calibrated on random normalised frames
    of `shape`), or None when nncf is not installed."""
    try:
        import nncf
    except ImportError:
        return None
    nncf.set_log_level(logging.ERROR)
    frames = [np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
              for seed in range(CALIBRATION_FRAMES)]
    with contextlib.redirect_stdout(sys.stderr):  # its progress bar must not mix into --json
        return nncf.quantize(core.read_model(str(path)), nncf.Dataset(frames), subset_size=CALIBRATION_FRAMES)


# ------------------------------------------------------------------------------------------------ ours

def _export_cached(work: pathlib.Path, spec: str, mode: str) -> pathlib.Path:
    """An export of a shipped model's Keras source (outputs map, prob) with the current export code, cached by
    the Keras file and the export code's hash."""
    from fastsal_tf.runtime.resolve import resolve_keras

    ref = resolve_keras(spec)
    digest = hashlib.sha256(ref.path.read_bytes())
    for source in sorted((ROOT / "fastsal_tf" / "export").glob("*.py")):
        digest.update(source.read_bytes())
    path = work / f"{spec}_{mode}_{digest.hexdigest()[:12]}.tflite"
    if path.is_file():
        return path
    from fastsal_tf.export.images import list_images, load_image
    from fastsal_tf.export.litert import export_tflite
    from fastsal_tf.runtime.resolve import load_keras

    stimuli = ROOT.parent / "shared" / "data" / "osie" / "data" / "stimuli"
    images = None
    if mode == "int8":
        if stimuli.is_dir():
            images = [load_image(file, INPUT_HW) for file in list_images(stimuli)[:100]]
        else:
            from fastsal_tf.export.images import synthetic_images
            images = list(synthetic_images(32, INPUT_HW))
    work.mkdir(parents=True, exist_ok=True)
    print(f"speed_vs_reference: exporting {spec} {mode} -> {path}", file=sys.stderr)
    export_tflite(load_keras(ref), path, mode=mode, outputs=("map", "prob"), representative_images=images,
                  check_parity=False)
    return path


def our_contestants(work: pathlib.Path, threads: int, frame: np.ndarray) -> list[Contestant]:
    from fastsal_tf.export.benchmark import set_tf_threads
    from fastsal_tf.export.flatbuffer import read_metadata
    from fastsal_tf.runtime.openvino import openvino_available
    from fastsal_tf.runtime.resolve import RUNTIMES, SHIPPED_MODELS, load_backend, resolve

    set_tf_threads(threads)
    models = {}  # path → (label, variant)
    for name in SHIPPED_MODELS:
        ref = resolve(name)
        models.setdefault(ref.path, (name, None))
    for spec, mode in (("fast", "fp32"), ("default-c", "fp32"), ("default-c", "int8")):
        models.setdefault(_export_cached(work, spec, mode), (f"{spec} {mode} export", None))
    contestants = []
    for path, (label, _) in models.items():
        kind = resolve(path).kind
        for runtime in RUNTIMES[kind]:
            if runtime == "openvino" and not openvino_available():
                continue
            backend, _ = load_backend(path, num_threads=threads, backend=runtime)
            mode = read_metadata(str(path)).get("export_mode") if kind == "litert" else "fp32"
            variant = _variant(backend, path)
            title = {"litert": "LiteRT", "openvino": "OpenVINO f32", "keras": "Keras"}[runtime]
            name = f"{variant} {mode} {title} (predict)"
            batch, own_size = frame[None], tuple(backend.input_hw) == INPUT_HW
            if not own_size:
                batch = np.resize(frame, (1, *backend.input_hw, 3))
                name = f"{name} at {backend.input_hw[0]}x{backend.input_hw[1]}"
            if name in (c.name for c in contestants):
                name = f"{name} [{label}]"
            contestants.append(Contestant(name, variant, lambda b=backend, x=batch: b.run(x),
                                          fp32_accurate=mode == "fp32", authors_size=own_size))
    return contestants


def _variant(backend, path) -> str:
    metadata = getattr(backend, "metadata", None)
    if metadata and metadata.get("variant"):
        return metadata["variant"]
    from fastsal_tf.models import describe

    return describe(backend.model).get("variant") or pathlib.Path(path).stem


# ------------------------------------------------------------------------------------------------ timing

def _cpu_busy_seconds() -> float | None:
    """Busy CPU time of the whole machine so far (s), from /proc/stat; None where there is none."""
    try:
        fields = pathlib.Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def time_rounds(contestants: list[Contestant], rounds: int, runs: int, load_before: tuple) -> dict:
    """Interleaved rounds; fills each contestant's times_ms. Returns what the machine did meanwhile.
    load_before: the load average when the script started (before its own exports and loading)."""
    for contestant in contestants:  # warm-up
        for _ in range(3):
            contestant.call()
    busy, own, wall = _cpu_busy_seconds(), sum(os.times()[:2]), time.perf_counter()
    for round_index in range(rounds):
        shift = round_index % len(contestants)
        for contestant in contestants[shift:] + contestants[:shift]:
            for _ in range(runs):
                start = time.perf_counter()
                contestant.call()
                contestant.times_ms.append(1000.0 * (time.perf_counter() - start))
    wall = time.perf_counter() - wall
    own = sum(os.times()[:2]) - own
    other = None if busy is None else max(0.0, (_cpu_busy_seconds() - busy - own) / wall)
    idle = load_before[0] < OTHER_CORES_IDLE + 0.75 and (other is None or other < OTHER_CORES_IDLE)
    return {"load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
            "other_processes_cores": other, "timing_seconds": wall, "idle": idle}


def summarise(contestants: list[Contestant]) -> list[dict]:
    rows = []
    for contestant in contestants:
        times = np.asarray(contestant.times_ms)
        rows.append({"name": contestant.name, "variant": contestant.variant, "fp32_accurate": contestant.fp32_accurate,
                     "authors_size": contestant.authors_size,
                     "median_ms": float(np.median(times)), "p10_ms": float(np.percentile(times, 10)),
                     "p90_ms": float(np.percentile(times, 90)), "calls": int(times.size)})
    return rows


def goals(rows: list[dict]) -> list[dict]:
    by_name = {row["name"]: row for row in rows}
    accurate = [row for row in rows if row["variant"] == "A" and row["fp32_accurate"] and row["authors_size"]
                and not row["name"].startswith("authors")]
    if accurate:
        by_name["A fastest fp32-accurate"] = min(accurate, key=lambda row: row["median_ms"])
    results = []
    for ours, reference, least in GOALS:
        if ours in by_name and reference in by_name:
            ratio = by_name[reference]["median_ms"] / by_name[ours]["median_ms"]
            results.append({"ours": by_name[ours]["name"], "reference": reference, "ratio": ratio, "goal": least,
                            "met": ratio >= least})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="threads of every runtime (default 2)")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--runs", type=int, default=10, help="calls per contestant per round (default 10)")
    parser.add_argument("--reference-dir", type=pathlib.Path, default=ROOT.parent / "shared" / "reference" / "onnx")
    parser.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/fastsal_speed_vs_reference"),
                        help="cache of the exports made for the run")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    if min(args.threads, args.rounds, args.runs) < 1:
        parser.error("--threads, --rounds and --runs must be at least 1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import onnxruntime  # noqa: F401
        import openvino  # noqa: F401
    except ImportError as error:
        print(f"speed_vs_reference: {error.name} is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    frame = np.random.default_rng(0).integers(0, 256, (*INPUT_HW, 3), dtype=np.uint8)
    try:
        contestants = reference_contestants(args.reference_dir, args.threads, frame)
    except FileNotFoundError as error:
        print(f"speed_vs_reference: {error}", file=sys.stderr)
        return 2
    contestants += our_contestants(args.work, args.threads, frame)
    machine = time_rounds(contestants, args.rounds, args.runs, load_before)
    rows = summarise(contestants)
    report = {"threads": args.threads, "rounds": args.rounds, "runs": args.runs, "input": list(INPUT_HW),
              "batch": 1, "cpu": _cpu_name(), "machine": machine, "results": rows, "goals": goals(rows)}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_report(report)
    return 0


def _cpu_name() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return f"{os.cpu_count()} logical CPUs"


def print_report(report: dict) -> None:
    machine = report["machine"]
    print(f"batch 1, {report['input'][0]}x{report['input'][1]}, {report['threads']} threads, {report['rounds']} "
          f"interleaved rounds x {report['runs']} calls; {report['cpu']}")
    references = {row["variant"]: row["median_ms"] for row in report["results"]
                  if row["name"].endswith("ONNX Runtime")}
    width = max(len(row["name"]) for row in report["results"])
    print(f"{'':{width}} {'median ms':>9} {'p10-p90 ms':>15} {'ORT / this':>10}")
    for row in report["results"]:
        ratio = references.get(row["variant"], float("nan")) / row["median_ms"]
        print(f"{row['name']:{width}} {row['median_ms']:9.2f} {row['p10_ms']:7.2f}-{row['p90_ms']:<7.2f} {ratio:10.2f}")
    print("goals (reference median / ours):")
    for goal in report["goals"]:
        print(f"  {goal['ours']} vs {goal['reference']}: {goal['ratio']:.2f}x (goal >= {goal['goal']}x: "
              f"{'met' if goal['met'] else 'NOT met'})")
    other = machine["other_processes_cores"]
    load = ", ".join(f"{v:.2f}" for v in machine["load_average_before"])
    state = "idle" if machine["idle"] else "NOT idle: timings are indicative only"
    print(f"machine {state} (load average at the start {load}; other processes used "
          f"{'unknown' if other is None else f'{other:.2f}'} cores on average while timing)")


if __name__ == "__main__":
    sys.exit(main())
