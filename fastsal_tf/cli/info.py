"""`fastsal info`: sizes of a FastSal variant, or the settings of a model file."""

from __future__ import annotations

import json


def add_parser(subparsers):
    parser = subparsers.add_parser("info", help="parameter counts and MACs of a variant, or describe a model file")
    parser.add_argument("model", nargs="?", help="a .keras file to describe (default: describe --variant)")
    parser.add_argument("--variant", choices=["A", "C"], default="A", help="FastSal variant (default A)")
    parser.add_argument("--size", default="192x256", help="input HxW, multiples of 32 (default 192x256)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def parse_size(text):
    """'192x256' → (192, 256)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 192x256, got {text!r}") from None
    return height, width


def run(args):
    import keras

    from fastsal_tf.models import TORCH_COMPATIBLE, build_fastsal, count_conv_macs, count_parameters, describe

    if args.model and args.model.endswith(".tflite"):
        from fastsal_tf.cli.export import print_tflite_info
        return print_tflite_info(args.model, args.json)
    if args.model:
        model = keras.saving.load_model(args.model)
        info = describe(model)
    else:
        height, width = parse_size(args.size)
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
