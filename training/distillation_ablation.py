"""The distillation ablation on OSIE (paper Table V style): does a teacher's pseudo-labelled data, and hint
pretraining against the teacher's features, help FastSal-A when only half of the labels exist?

Steps (each skipped when its output exists, so rerunning the command resumes; the training programs
themselves resume an interrupted run from its last finished epoch):
  1. teacher: FastSal-C fine-tuned on the 300 labelled images (training/splits/osie_labelled300.json).
  2. pseudo-labels: the teacher's probability maps of the 300 unlabelled images (osie_unlabelled300.json).
  3. hint pretraining per seed: FastSal's hint model regresses the teacher's adaptation features
     adapt_0..3 (128/256/512/512 channels at H/2..H/16) on all 600 train images (images only, no labels).
  4. students per seed: FastSal-A on the labelled half; ± the pseudo-labelled half as extra images
     (--pseudo_mode=extra); ± initialised from the seed's hint model; and the labelled half for twice the
     epochs (as many optimiser steps as a run with the pseudo-labelled half).
  5. every model scored on the 100 OSIE validation images (protocol mit), per-image scores in
     <out_dir>/eval/<run>/per_image.csv; the table in <out_dir>/table.md.

Table: each row's metric is the mean over its seeds of the per-seed validation means; "± SE" is the
per-image standard error (the standard deviation over the 100 images of the seed-averaged per-image score,
over sqrt(100)); "Δ CC" is the mean per-image difference to the labelled-only row with its paired standard
error. Differences smaller than about two standard errors are noise.

Example (the BUILD.md ablation; about 2 h on a 2-core CPU):
  python training/distillation_ablation.py --data_dir=../shared/data/osie --out_dir=runs/ablation \
      --imagenet_weights=../shared/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite
"""

import pathlib
import subprocess
import sys
import time

from absl import flags

from fastsal_tf.cli import absl_flags

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPLITS = ROOT / "training" / "splits"
HINT_LAYERS = "adapt_0_relu,adapt_1_relu,adapt_2_relu,adapt_3_relu"
METRICS = ("cc", "nss", "auc_judd", "kld")

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "OSIE root")
flags.DEFINE_string("out_dir", "runs/ablation", "output folder for every run, the evaluations and table.md")
flags.DEFINE_string("imagenet_weights", "", "MobileNetV2 LiteRT classifier (.tflite) for the ImageNet backbone; "
                    "empty: random initialisation (smoke tests only)")
flags.DEFINE_list("seeds", ["0", "1"], "student seeds (each with its own hint pretraining)")
flags.DEFINE_integer("teacher_epochs", 15, "teacher (FastSal-C) epochs")
flags.DEFINE_integer("hint_epochs", 4, "hint pretraining epochs")
flags.DEFINE_integer("epochs", 10, "student epochs")
flags.DEFINE_float("lr", 3e-4, "Adam learning rate (cosine decay) of teacher and students")
flags.DEFINE_string("labelled_split", str(SPLITS / "osie_labelled300.json"), "OSIE split JSON: train = the labelled half")
flags.DEFINE_string("unlabelled_split", str(SPLITS / "osie_unlabelled300.json"),
                    "OSIE split JSON: train = the unlabelled half")
flags.DEFINE_string("hint_split", "", "OSIE split JSON whose train images the hint pretraining uses (default: the "
                    "packaged split, whose 600 train images are both halves)")
flags.DEFINE_string("size", "192x256", "network input HxW of every model")
flags.DEFINE_integer("batch_size", 8, "batch size of every training run")
flags.mark_flags_as_required(["data_dir"])


class StepFailed(RuntimeError):
    """A step's program exited with an error (its own message is printed above)."""


def check_inputs():
    """Raises ValueError naming the flag and file of a missing data folder, weights file or bad split JSON."""
    from fastsal_tf.data.errors import DatasetError
    from fastsal_tf.data.readers.osie import osie_split

    if not pathlib.Path(FLAGS.data_dir).is_dir():
        raise ValueError(f"--data_dir: {FLAGS.data_dir} is not a folder")
    if FLAGS.imagenet_weights and not pathlib.Path(FLAGS.imagenet_weights).is_file():
        raise ValueError(f"--imagenet_weights: {FLAGS.imagenet_weights} is not a file")
    for flag in ("labelled_split", "unlabelled_split", "hint_split"):
        path = FLAGS[flag].value
        if path:
            try:
                osie_split(path)
            except (OSError, DatasetError) as error:
                raise ValueError(f"--{flag}: {error}") from error


def run_step(name, done, command):
    """Runs `command` (a training program) unless the file `done` exists; prints its wall time."""
    if done.exists():
        print(f"[{name}] done already: {done}", flush=True)
        return
    print(f"[{name}] {' '.join(command)}", flush=True)
    start = time.time()
    code = subprocess.run([sys.executable, str(ROOT / command[0]), *command[1:]]).returncode
    if code:
        raise StepFailed(f"step {name!r} failed (exit status {code}); rerunning the command resumes from it")
    print(f"[{name}] finished in {time.time() - start:.0f} s", flush=True)


def common_flags(init=None):
    """Flags of every training run; init: a .keras model to start from instead of the ImageNet backbone."""
    start = [f"--init={init}"] if init else \
        [f"--imagenet_weights={FLAGS.imagenet_weights}"] if FLAGS.imagenet_weights else ["--init=none"]
    return [f"--data_dir={FLAGS.data_dir}", *start, f"--size={FLAGS.size}", f"--batch_size={FLAGS.batch_size}"]


# (table row, run name prefix, pseudo-labelled extra images, hint initialisation, epochs factor). With the
# pseudo-labelled half an epoch has twice the steps: "labelled only, 2× epochs" takes as many steps.
CONDITIONS = (
    ("labelled only", "labelled", False, False, 1),
    ("labelled only, 2× epochs", "labelled_long", False, False, 2),
    ("labelled + pseudo-labelled", "labelled_pseudo", True, False, 1),
    ("hint + labelled", "hint_labelled", False, True, 1),
    ("hint + labelled + pseudo-labelled", "hint_labelled_pseudo", True, True, 1),
)


def student_runs():
    """{run name: (table row, seed, pseudo-labels, hint, epochs)} in table order."""
    return {f"{prefix}_s{seed}": (title, seed, pseudo, hint, FLAGS.epochs * factor)
            for title, prefix, pseudo, hint, factor in CONDITIONS for seed in FLAGS.seeds}


def train_all(out):
    teacher = out / "teacher_c"
    run_step("teacher", teacher / "final.keras",
             ["training/finetune.py", f"--out_dir={teacher}", *common_flags(), "--variant=C",
              f"--split_file={FLAGS.labelled_split}", f"--epochs={FLAGS.teacher_epochs}",
              f"--lr={FLAGS.lr}", "--nss_weight=0.1", "--seed=0"])
    labels = out / "pseudo"
    run_step("pseudo-labels", labels / "pseudo_labels-00000-of-00001.tfrecord",
             ["training/pseudo_label.py", f"--teacher={teacher / 'final.keras'}", f"--out_dir={labels}",
              "--dataset=osie", f"--data_dir={FLAGS.data_dir}", "--split=train",
              f"--split_file={FLAGS.unlabelled_split}", f"--input_size={FLAGS.size}", "--label_kind=prob",
              "--teacher_name=fastsal_c_osie_labelled300", "--teacher_version=seed0"])
    for seed in FLAGS.seeds:
        hint = out / f"hint_s{seed}"
        run_step(f"hint s{seed}", hint / "final.keras",
                 ["training/pretrain.py", f"--out_dir={hint}", *common_flags(), f"--teacher={teacher / 'final.keras'}",
                  f"--teacher_outputs={HINT_LAYERS}", f"--epochs={FLAGS.hint_epochs}", f"--seed={seed}"]
                 + ([f"--split_file={FLAGS.hint_split}"] if FLAGS.hint_split else []))
    for name, (_, seed, pseudo, hint, epochs) in student_runs().items():
        init = out / f"hint_s{seed}" / "final.keras" if hint else None
        command = ["training/finetune.py", f"--out_dir={out / name}", *common_flags(init), "--variant=A",
                   f"--split_file={FLAGS.labelled_split}", f"--epochs={epochs}", f"--lr={FLAGS.lr}",
                   "--nss_weight=0", f"--seed={seed}"]
        if pseudo:
            command += [f"--pseudo_labels={labels}", "--pseudo_mode=extra"]
        run_step(name, out / name / "final.keras", command)


def evaluate_all(out, names):
    """Scores each run's final.keras on the validation split; returns {run: {image_id: {metric: value}}}."""
    from fastsal_tf.evaluation import run_evaluation, write_reports
    from fastsal_tf.evaluation.comparison import read_per_image

    scores = {}
    for name in names:
        folder = out / "eval" / name
        if not (folder / "per_image.csv").exists():
            print(f"[evaluate] {name}", flush=True)
            report = run_evaluation(str(out / name / "final.keras"), "osie", FLAGS.data_dir, split="validation",
                                    split_file=FLAGS.labelled_split)
            write_reports(report, folder)
        scores[name] = read_per_image(folder / "per_image.csv", METRICS)
    return scores


def main(argv):
    del argv
    from fastsal_tf.evaluation.comparison import condition_table
    from fastsal_tf.common.files import write_atomic

    out = pathlib.Path(FLAGS.out_dir).resolve()
    try:
        check_inputs()
        train_all(out)
    except (ValueError, StepFailed) as error:
        print(f"distillation_ablation: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ValueError) else 1
    runs = student_runs()
    scores = evaluate_all(out, ["teacher_c", *runs])
    groups = {}
    for name, (title, *_) in runs.items():
        groups.setdefault(title, []).append(name)
    groups["teacher (FastSal-C, labelled half)"] = ["teacher_c"]
    text = condition_table(scores, groups, baseline="labelled only", metrics=METRICS)
    write_atomic(out / "table.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    absl_flags.run(main)
