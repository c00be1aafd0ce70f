"""`fastsal benchmark MODEL.tflite`: LiteRT CPU latency (p50 / p90) and FPS of an exported model."""

from __future__ import annotations

import json

from fastsal_tf.cli.arguments import non_negative_int, positive_int


def add_parser(subparsers):
    parser = subparsers.add_parser("benchmark", help="latency of a .tflite model with the LiteRT CPU interpreter")
    parser.add_argument("model", help="a .tflite file or a shipped LiteRT name (default, default-int8, fast, fast-int8)")
    parser.add_argument("--threads", type=positive_int, default=2, help="interpreter threads (default 2)")
    parser.add_argument("--runs", type=positive_int, default=100, help="timed runs (default 100)")
    parser.add_argument("--warmup", type=non_negative_int, default=10, help="untimed runs first (default 10)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run, lazy_tensorflow=True)


def run(args):
    from fastsal_tf.export.benchmark import benchmark_tflite
    from fastsal_tf.runtime.resolve import resolve

    ref = resolve(args.model)
    if ref.kind != "litert":
        raise ValueError(f"benchmark needs a .tflite file or a shipped LiteRT name (default, default-int8, fast, "
                         f"fast-int8), got {args.model!r}")
    try:
        result = benchmark_tflite(str(ref.path), threads=args.threads, runs=args.runs, warmup=args.warmup)
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"{ref.path}: not a usable LiteRT model ({error})") from None
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['model']}: {result['threads']} threads, {result['runs']} runs after {result['warmup']} warm-up")
    print(f"  p50 {result['p50_ms']:.2f} ms  p90 {result['p90_ms']:.2f} ms  mean {result['mean_ms']:.2f} ms  "
          f"FPS {result['fps']:.1f} (1000/p50)")
    return 0
