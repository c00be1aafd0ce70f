"""`fastsal import-torch`: an authors' PyTorch checkpoint (.pth) → a Keras model file (no torch needed)."""

from __future__ import annotations

import pathlib

from fastsal_tf.cli.arguments import check_out_path, input_size


def add_parser(subparsers):
    parser = subparsers.add_parser("import-torch", help="convert an authors' .pth checkpoint to a .keras model")
    parser.add_argument("checkpoint", help="the .pth file (legacy or zip serialisation)")
    parser.add_argument("--variant", choices=["A", "C", "pretrain"], help="checked against the keys "
                        "(default: detected from them)")
    parser.add_argument("--out", required=True, help="output .keras file")
    parser.add_argument("--size", type=input_size, default="192x256",
                        help="input HxW of the built model (default 192x256)")
    parser.set_defaults(func=run)


def run(args):
    from fastsal_tf.common.files import atomic_path
    from fastsal_tf.models import count_parameters, describe
    from fastsal_tf.runtime.resolve import resolve
    from fastsal_tf.weights.torch_import import import_torch_checkpoint

    out = pathlib.Path(args.out)
    if out.suffix != ".keras":
        raise ValueError(f"--out must end in .keras, got {args.out!r}")
    check_out_path(out, folder=False)
    ref = resolve(args.checkpoint)
    if ref.kind != "torch":
        raise ValueError(f"{args.checkpoint}: import-torch reads a .pth / .pt checkpoint, got a {ref.kind} model")
    height, width = args.size
    model = import_torch_checkpoint(ref.path, args.variant, (height, width, 3))
    with atomic_path(out) as temp:
        model.save(temp)
    info = describe(model)
    print(f"wrote {out}: FastSal-{info['variant']} ({count_parameters(model):,} parameters), input "
          f"{height}x{width} RGB 0-255, normalization {info['normalization']}, padding {info['padding']}, "
          f"pixel shuffle {info['pixel_shuffle']}")
    return 0
