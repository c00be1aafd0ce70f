"""Times fastsal_tf.metrics on a 1024×768 map with 300 fixations (target: all metrics < 0.2 s).

Usage: python benchmarks/metrics_speed.py [repeats]. Prints the median wall time of each metric and of
score_image (all eight metrics) over the repeats, for a smooth random map and random fixations (seed 0).
"""

import sys
import time

import numpy as np
from scipy import ndimage

from fastsal_tf import fixations, metrics

HEIGHT, WIDTH, N_FIXATIONS = 768, 1024, 300


def _median_seconds(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(repeats=7):
    rng = np.random.default_rng(0)
    saliency = ndimage.gaussian_filter(rng.random((HEIGHT, WIDTH)), 20)
    points = rng.uniform([0, 0], [WIDTH - 1, HEIGHT - 1], size=(N_FIXATIONS, 2))
    fixation_map = fixations.rasterize(points, (HEIGHT, WIDTH))
    density = fixations.density_map(fixation_map, 30.0)
    others = fixations.rasterize(rng.uniform([0, 0], [WIDTH - 1, HEIGHT - 1], size=(3000, 2)), (HEIGHT, WIDTH))
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    center_bias = np.exp(-(((xx - WIDTH / 2) / (WIDTH / 4)) ** 2 + ((yy - HEIGHT / 2) / (HEIGHT / 4)) ** 2) / 2)
    calls = {
        "auc_judd": lambda: metrics.auc_judd(saliency, fixation_map),
        "auc_borji": lambda: metrics.auc_borji(saliency, fixation_map),
        "auc_shuffled": lambda: metrics.auc_shuffled(saliency, fixation_map, others),
        "nss": lambda: metrics.nss(saliency, fixation_map),
        "information_gain": lambda: metrics.information_gain(saliency, fixation_map, center_bias),
        "cc": lambda: metrics.cc(saliency, density),
        "kld": lambda: metrics.kld(saliency, density),
        "sim": lambda: metrics.sim(saliency, density),
        "score_image (all)": lambda: metrics.score_image(saliency, fixation_map, density, baseline_map=center_bias,
                                                         other_fixation_map=others),
    }
    print(f"{WIDTH}x{HEIGHT} map, {int(fixation_map.sum())} fixated pixels, median of {repeats} runs")
    for name, call in calls.items():
        print(f"{name:>18}: {1000 * _median_seconds(call, repeats):7.1f} ms")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
