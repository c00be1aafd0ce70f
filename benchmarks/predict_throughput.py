"""Speed of the main job, `fastsal predict`, as a person runs it (goals: one 640x480 photo in <= 1.5 s of
wall time; a folder of 500 640x480 JPEGs, maps + overlays, at >= 80 images/s on 2 cores).

Usage:
  python benchmarks/predict_throughput.py [--stimuli DIR] [--work DIR] [--images 500] [--rounds 3]
      [--config LABEL:CHECKOUT[:ARGS]] ... [--profile]

Images: the first --images OSIE stimuli (--stimuli, default ../shared/data/osie/data/stimuli) resized to
640x480 and saved as quality-90 JPEGs in --work (default /tmp/fastsal_predict_bench/osie640; made once).

Each configuration is a checkout of the project and extra `fastsal predict` arguments (default: this checkout,
no arguments, i.e. the default model with maps and overlays); `--config before:/work/main --config
after:.` compares two checkouts. Every round runs, for each configuration in turn (interleaved, so a change
in the machine's load hits all alike): `python -m fastsal_tf predict PHOTO` (one image, the whole command:
start-up, model load, prediction, writing) and `python -m fastsal_tf predict FOLDER` (the whole command's
wall time; images/s = images / wall time). A first untimed run warms the disk cache. Prints the median and
range of each, and the load average (the goals are for an idle machine).

--profile also prints where the CPU time goes per image, stage by stage, in this process on this checkout
(one thread; --profile-model, default: default); --rounds 0 runs only that.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZE_WH = (640, 480)


@dataclasses.dataclass
class Config:
    label: str
    checkout: pathlib.Path
    args: list[str]


def parse_config(text: str) -> Config:
    label, _, rest = text.partition(":")
    checkout, _, args = rest.partition(":")
    path = pathlib.Path(checkout or ROOT).resolve()
    if not label or not (path / "fastsal_tf" / "__main__.py").is_file():
        raise argparse.ArgumentTypeError(f"expected LABEL:CHECKOUT[:ARGS] with a fastsal-tf checkout, got {text!r}")
    return Config(label, path, shlex.split(args))


def make_images(stimuli: pathlib.Path, folder: pathlib.Path, count: int) -> list[pathlib.Path]:
    """The first `count` images of `stimuli`, resized to 640x480 (bilinear), as quality-90 JPEGs in folder."""
    from PIL import Image

    sources = sorted(p for p in stimuli.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
    if len(sources) < count:
        sys.exit(f"predict_throughput: {stimuli} holds {len(sources)} images, {count} needed (--stimuli, --images)")
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for source in sources:
        target = folder / f"{source.stem}.jpg"
        if not target.exists():
            with Image.open(source) as image:
                image.convert("RGB").resize(SIZE_WH, Image.Resampling.BILINEAR).save(target, quality=90)
        made.append(target)
    return made


@dataclasses.dataclass
class Timing:
    wall: float  # seconds of the whole command
    job_rate: float  # images/s the command reports for its job (without start-up and model loading)
    cpu: float  # CPU seconds of the command (user + system)


def time_command(config: Config, inputs: pathlib.Path, out: pathlib.Path) -> Timing:
    """Runs `python -m fastsal_tf predict INPUTS --out OUT ARGS` from config.checkout."""
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(config.checkout))
    command = [sys.executable, "-m", "fastsal_tf", "predict", str(inputs), "--out", str(out), *config.args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=config.checkout, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reported = re.search(r"\(([0-9.]+) images/s\)", done.stderr)
    if done.returncode != 0 or reported is None:
        sys.exit(f"predict_throughput: {config.label}: {shlex.join(command)} failed:\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(seconds, float(reported.group(1)), cpu)


def spread(values: list[float], unit: str) -> str:
    return f"median {statistics.median(values):.2f} {unit} (range {min(values):.2f}-{max(values):.2f})"


def profile(photos: list[pathlib.Path], work: pathlib.Path, model: str, count: int = 200) -> None:
    """CPU time (thread time, so other processes' load counts little) of each stage of `fastsal predict` for
    one image at a time on one thread, with a one-thread interpreter as the job runs it; the PNG overlay is
    timed for comparison and left out of the total."""
    sys.path.insert(0, str(ROOT))
    from fastsal_tf.api import load_model
    from fastsal_tf.common.files import write_all_atomic
    from fastsal_tf.predict import postprocess
    from fastsal_tf.predict.runner import PREDICT_MARK
    from fastsal_tf.runtime.outputs import to_frame, to_probabilities

    predictor = load_model(model)
    backend = predictor.backend
    if hasattr(backend, "set_num_threads"):
        backend.set_num_threads(1)
    spent: dict[str, float] = {}
    out = work / "profile_out"
    shutil.rmtree(out, ignore_errors=True)  # new files, as the job writes them (replacing costs more)
    images = (photos * (1 + (count + 20) // len(photos)))[:count + 20]
    for index, photo in enumerate(images):
        if index == 20:  # warm-up done
            spent.clear()
        clock = time.thread_time()

        def stage(name):
            nonlocal clock
            now = time.thread_time()
            spent[name] = spent.get(name, 0.0) + now - clock
            clock = now

        prepared = predictor.prepare(photo, display=True)
        stage("decode + resize")
        raw = backend.raw(prepared.net_input[None])
        stage("model")
        net_map = to_probabilities(to_frame(raw, backend.input_hw), backend.output_kind)[0]
        stage("network map to probabilities")
        shown = postprocess.display_map(predictor.finish(prepared, net_map))
        stage("map back to 640x480 + display map")
        files = {out / f"{index}_saliency.png": postprocess.encode_png(shown, 1, PREDICT_MARK)}
        stage("map PNG encode")
        blended = postprocess.overlay(prepared.display, shown)
        stage("overlay blend")
        files[out / f"{index}_overlay.jpg"] = postprocess.encode_jpeg(blended, comment=PREDICT_MARK[1])
        stage("overlay JPEG encode")
        write_all_atomic(files)
        stage("write both files")
        postprocess.encode_png(blended, 1, PREDICT_MARK)
        stage("(overlay PNG encode instead)")
    total = sum(seconds for name, seconds in spent.items() if not name.startswith("("))
    print(f"profile: {predictor.describe()}, one thread, CPU ms per image over {count} images:")
    for name, seconds in spent.items():
        print(f"  {name:36s} {1000 * seconds / count:6.2f}")
    print(f"  {'total (JPEG overlay)':36s} {1000 * total / count:6.2f} (= {(os.cpu_count() or 1) / total * count:.0f} "
          f"images/s on {os.cpu_count()} idle cores, were the stages all)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stimuli", default=str(ROOT.parent / "shared" / "data" / "osie" / "data" / "stimuli"))
    parser.add_argument("--work", default="/tmp/fastsal_predict_bench")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--config", type=parse_config, action="append",
                        help="LABEL:CHECKOUT[:ARGS], repeatable (default: this:<this checkout>)")
    parser.add_argument("--profile", action="store_true", help="also profile the stages in this process")
    parser.add_argument("--profile-model", default="default", help="the model --profile runs (default: default)")
    args = parser.parse_args(argv)
    configs = args.config or [Config("this", ROOT, [])]

    load_before = os.getloadavg()  # the runs' own load would count at the end
    work = pathlib.Path(args.work)
    folder = work / "osie640"
    photos = make_images(pathlib.Path(args.stimuli), folder, args.images)
    print(f"images: {len(photos)} OSIE stimuli as 640x480 JPEG (quality 90) in {folder}; cpu cores {os.cpu_count()}")
    if args.rounds < 1:
        if args.profile:
            profile(photos, work, args.profile_model)
        return 0
    one = {c.label: [] for c in configs}
    many = {c.label: [] for c in configs}
    for config in configs:  # warm the disk cache
        time_command(config, photos[0], work / "out_one")
    for _ in range(args.rounds):
        for config in configs:
            one[config.label].append(time_command(config, photos[0], work / "out_one"))
            many[config.label].append(time_command(config, folder, work / "out_many"))
    cores = os.cpu_count() or 1
    for config in configs:
        print(f"{config.label} ({config.checkout}; fastsal predict {shlex.join(config.args) or '(defaults)'}):")
        print(f"  one photo: {spread([t.wall for t in one[config.label]], 's')} wall, "
              f"{spread([t.cpu for t in one[config.label]], 's')} CPU")
        runs = many[config.label]
        print(f"  {len(photos)} photos: job {spread([t.job_rate for t in runs], 'images/s')} as the command reports "
              f"it; whole command {spread([len(photos) / t.wall for t in runs], 'images/s')}; CPU "
              f"{spread([1000 * t.cpu / len(photos) for t in runs], 'ms')} per image (= "
              f"{statistics.median(cores * len(photos) / t.cpu for t in runs):.0f} images/s with {cores} idle cores)")
    load = load_before
    print(f"load average at the start: {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} on {os.cpu_count()} cores"
          + (" (not idle: figures are indicative)" if load[0] > 0.5 else ""))
    if args.profile:
        profile(photos, work, args.profile_model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
