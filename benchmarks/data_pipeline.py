"""Input-pipeline throughput: OSIE JPEGs → 192×256 batches with densities at network resolution, no cache.

    python benchmarks/data_pipeline.py [--data-dir ../shared/data/osie] [--epochs 3]

Prints examples/s for the evaluation configuration (no augmentation) and the training configuration
(flip, random resized crop, photometric jitter, shuffling), timed after one warm-up epoch; and the CPU time
this process spent per example, with the rate all of the machine's cores would give at that cost (the
figure to read on a machine shared with other work, where wall-clock rates drop).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fastsal_tf.data.augment import Augmentation  # noqa: E402
from fastsal_tf.data.pipeline import PipelineConfig, build_pipeline  # noqa: E402
from fastsal_tf.data.registry import read_dataset  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def measure(examples, config: PipelineConfig, epochs: int) -> tuple[float, float]:
    """(examples per wall-clock second, CPU seconds of this process per example)."""
    dataset = build_pipeline(examples, config)
    for _ in dataset:  # warm-up: tracing, file cache
        pass
    wall, cpu, count = time.perf_counter(), time.process_time(), 0
    for _ in range(epochs):
        for batch in dataset:
            count += int(batch["image"].shape[0])
    return count / (time.perf_counter() - wall), (time.process_time() - cpu) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "osie"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    examples = read_dataset("osie", args.data_dir)
    base = dict(size=(192, 256), sigma_px=24.0, batch_size=args.batch_size, seed=0)
    configs = {"evaluation": PipelineConfig(**base),
               "training": PipelineConfig(**base, augment=Augmentation(), shuffle=True)}
    print(f"OSIE: {len(examples)} JPEGs 800x600 -> 192x256, density sigma 24 px at network resolution, no cache, "
          f"{os.cpu_count()} CPUs")
    for name, config in configs.items():
        rate, cpu = measure(examples, config, args.epochs)
        print(f"{name:>10}: {rate:7.1f} examples/s; {cpu * 1e3:.2f} ms CPU per example "
              f"= {os.cpu_count() / cpu:.0f} examples/s on {os.cpu_count()} free cores")


if __name__ == "__main__":
    main()
