"""`fastsal info`: sizes of a FastSal variant, or the settings of a model file."""

from __future__ import annotations

import json

# parse_size stays importable from here for training/finetune.py.
from fastsal_tf.cli.arguments import input_size, parse_size  # noqa: F401


def add_parser(subparsers):
    parser = subparsers.add_parser("info", help="parameter counts and MACs of a variant, or describe a model file")
    parser.add_argument("model", nargs="?", help="a shipped name (default, default-keras, default-int8, fast, default-c, ...), a "
                        ".keras, .tflite or .pth file to describe (default: describe --variant)")
    parser.add_argument("--variant", choices=["A", "C"], default="A", help="FastSal variant (default A)")
    parser.add_argument("--size", type=input_size, default="192x256",
                        help="input HxW, multiples of 32 (default 192x256)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run, lazy_tensorflow=True)


def run(args):
    from fastsal_tf.common.console import import_tensorflow_quietly
    from fastsal_tf.runtime.resolve import load_keras, resolve

    ref = resolve(args.model) if args.model is not None else None
    if ref is not None and ref.kind == "litert":
        return print_tflite_info(ref.path, args.json)  # without TensorFlow
    import_tensorflow_quietly()
    from fastsal_tf.models import TORCH_COMPATIBLE, build_fastsal, count_conv_macs, count_parameters, describe

    if ref is not None:
        model = load_keras(ref)
        try:
            info = describe(model)
        except ValueError as error:
            raise ValueError(f"{ref.path}: {error}") from None
    else:
        height, width = args.size
        model = build_fastsal(args.variant, (height, width, 3), **TORCH_COMPATIBLE)
        info = {"variant": args.variant, "input_shape": [height, width, 3]}
    info.update(trainable_parameters=count_parameters(model), non_trainable_parameters=count_parameters(model, False),
                conv_macs=count_conv_macs(model) if None not in model.input_shape[1:3] else None)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key == "conv_macs" and value is not None:
            value = f"{value:,} ({value / 1e6:.1f} M)"
        elif isinstance(value, int):
            value = f"{value:,}"
        print(f"{key:26s} {value}")
    return 0


def print_tflite_info(path, as_json=False):
    """`fastsal info model.tflite`: signature tensors, ops and embedded metadata."""
    from fastsal_tf.export import describe_tflite

    info = describe_tflite(path)
    if as_json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['path']}: {info['size_bytes']:,} bytes, signatures {info['signatures']}")
    for kind in ("inputs", "outputs"):
        for tensor in info[kind]:
            scale, zero = tensor["quantization"]
            quant = f" (scale {scale:.6g}, zero point {zero})" if scale else ""
            print(f"  {kind[:-1]:6s} {tensor['name']:16s} {tensor['dtype']:7s} {tensor['shape']}{quant}")
    print(f"ops ({len(info['ops'])}): {', '.join(info['ops'])}")
    if info["metadata"] is None:
        print("metadata: none (not a fastsal export)")
    else:
        print("metadata:")
        print(json.dumps(info["metadata"], indent=2))
    return 0
