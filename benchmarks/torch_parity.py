"""Parity of imported authors' checkpoints with their PyTorch reference outputs (../shared/reference).

Usage: python benchmarks/torch_parity.py [--shared ../shared]
Prints, per checkpoint file, the max |Δ| of the logits and the per-image CC against `logits` in
vectors_{A,C}.npz: on the given (already normalised) inputs, and end to end from the two COCO JPEGs through
our preprocessing (PIL LANCZOS stretch to 256×192, RGB 0–255 into the model's ImageNet normalisation).
"""

import argparse
import pathlib

import numpy as np
from PIL import Image

from fastsal_tf.cli import import_tensorflow_quietly

FILES = {"A": ("random_A.pth", "random_A_convkeys.pth"), "C": ("random_C.pth", "random_C_zip.pth")}


def compare(logits, expected):
    cc = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(logits, expected)]
    return f"max|d| {np.abs(logits - expected).max():.2e}  CC min {min(cc):.10f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
    args = parser.parse_args()
    import_tensorflow_quietly()
    from fastsal_tf.weights.torch_import import import_torch_checkpoint

    reference = pathlib.Path(args.shared) / "reference"
    photos = pathlib.Path(args.shared) / "data" / "coco_examples"
    for variant, names in FILES.items():
        ref = np.load(reference / f"vectors_{variant}.npz")
        for name in names:
            model = import_torch_checkpoint(reference / name, normalization="none", heads=("logits",))
            logits = model.predict(ref["inputs"].transpose(0, 2, 3, 1), verbose=0)["logits"][..., 0]
            print(f"{name:24s} 4 inputs        {compare(logits, ref['logits'][:, 0])}")
        model = import_torch_checkpoint(reference / names[0], heads=("logits",))
        images = np.stack([np.asarray(Image.open(photos / str(n)).convert("RGB").resize((256, 192), Image.LANCZOS),
                                      np.float32) for n in ref["input_names"][2:]])
        logits = model.predict(images, verbose=0)["logits"][..., 0]
        print(f"{names[0]:24s} 2 JPEG files    {compare(logits, ref['logits'][2:, 0])}")


if __name__ == "__main__":
    main()
