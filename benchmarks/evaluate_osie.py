"""Center bias and a cheap "simple model" on the OSIE validation split (protocol mit), as a Table-I report.

Usage: python benchmarks/evaluate_osie.py [--data-dir ../shared/data/osie] [--limit N] [--out DIR]

Rows: "gradient magnitude" — the Sobel gradient magnitude of the grayscale image at 1/4 size, blurred by a
Gaussian of 6 px there (24 px ≈ 1 degree at the stored size), returned at 1/4 size so that the metric code
resizes it to the image (bicubic, its documented rule); "gradient × center" — the same map times a centred
Gaussian (sd 0.25 H, 0.25 W); "center bias" — the mean density of the 600 OSIE training images. Prints the
markdown table and the time per image; with --out also writes the full reports.
"""

import argparse
import pathlib
import sys
import time

import numpy as np
from PIL import Image
from scipy import ndimage

from fastsal_tf.evaluation import centered_gaussian, markdown_table, run_evaluation, write_reports

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOWNSCALE = 4


def gradient_magnitude(path) -> np.ndarray:
    with Image.open(path) as image:
        gray = image.convert("L")
        small = gray.resize((max(1, gray.width // DOWNSCALE), max(1, gray.height // DOWNSCALE)), Image.Resampling.BOX)
    values = np.asarray(small, dtype=np.float64)
    magnitude = np.hypot(ndimage.sobel(values, axis=0), ndimage.sobel(values, axis=1))
    return ndimage.gaussian_filter(magnitude, 24.0 / DOWNSCALE) + 1e-12


def gradient_times_center(path) -> np.ndarray:
    values = gradient_magnitude(path)
    return values * centered_gaussian(values.shape)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "osie"))
    parser.add_argument("--split", default="validation")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", default=None, help="also write report.md/.csv/.json and per_image.csv here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    report = run_evaluation({"gradient magnitude": gradient_magnitude, "gradient × center": gradient_times_center},
                            "osie", args.data_dir, split=args.split, limit=args.limit)
    seconds = time.perf_counter() - start
    print(markdown_table(report))
    p = report.protocol
    print(f"\nOSIE {args.split}: {p['images']} images, protocol {p['protocol']}, sigma {p['sigma_px']:g} px, center "
          f"bias = mean density of {p['center_bias']['images']} {p['center_bias']['split']} images; "
          f"{seconds:.1f} s in all ({1000 * p['seconds'] / p['images']:.0f} ms per image for 3 rows)")
    if args.out:
        write_reports(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
