"""The distillation ablation: its table arithmetic (fastsal_tf.evaluation.comparison) against numpy, its
OSIE halves, and (slow) the whole program — teacher, pseudo-labels, hint pretraining, four students,
evaluation — on the tiny OSIE fixture."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from fastsal_tf.evaluation.comparison import condition_table, standard_error

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROGRAM = ROOT / "training" / "distillation_ablation.py"


def fake_scores(rng, images, shift):
    return {f"im{i}": {"cc": 0.5 + shift + 0.1 * rng.standard_normal(), "nss": 2.0 + rng.standard_normal(),
                       "auc_judd": 0.9, "kld": 0.5 + shift} for i in range(images)}


def test_table_averages_seeds_per_image_and_reports_paired_errors():
    rng = np.random.default_rng(0)
    scores = {"a0": fake_scores(rng, 50, 0.0), "a1": fake_scores(rng, 50, 0.0), "b0": fake_scores(rng, 50, 0.05)}
    text = condition_table(scores, {"labelled only": ["a0", "a1"], "other": ["b0"]}, baseline="labelled only")
    rows = [line.split(" | ") for line in text.splitlines()[2:]]
    assert [row[0].strip("| ") for row in rows] == ["labelled only", "other"]

    base = np.array([(scores["a0"][k]["cc"] + scores["a1"][k]["cc"]) / 2 for k in scores["a0"]])
    other = np.array([scores["b0"][k]["cc"] for k in scores["a0"]])
    se = base.std(ddof=1) / np.sqrt(50)
    assert rows[0][2] == f"{base.mean():.3f} ± {se:.3f}"
    delta = other - base
    assert rows[1][6] == f"{delta.mean():+.4f} ± {delta.std(ddof=1) / np.sqrt(50):.4f}"
    assert rows[0][6] == "—"
    assert rows[0][7].strip(" |") == f"{np.mean(list(v['cc'] for v in scores['a0'].values())):.3f}, " \
                                     f"{np.mean(list(v['cc'] for v in scores['a1'].values())):.3f}"
    assert rows[1][5] == f"{0.55:.3f} ± {0.0:.3f}"  # a constant KLD has no spread
    assert standard_error([1.0, 2.0, 3.0, 4.0]) == pytest.approx(np.sqrt(5 / 3) / 2)


def test_split_files_halve_the_packaged_train_split():
    packaged = json.loads((ROOT / "fastsal_tf" / "data" / "osie_split.json").read_text())
    halves = [json.loads((ROOT / "training" / "splits" / f"osie_{n}300.json").read_text())
              for n in ("labelled", "unlabelled")]
    assert [len(h["train"]) for h in halves] == [300, 300]
    assert not set(halves[0]["train"]) & set(halves[1]["train"])
    assert set(halves[0]["train"]) | set(halves[1]["train"]) == set(packaged["train"])
    assert halves[0]["validation"] == halves[1]["validation"] == packaged["validation"]


def test_bad_inputs_are_named_before_any_training(test_data, tmp_path):
    osie = test_data / "datasets" / "osie"
    (tmp_path / "bad.json").write_text("{not json")
    base = [sys.executable, str(PROGRAM), f"--out_dir={tmp_path / 'out'}"]
    cases = [([f"--data_dir={tmp_path / 'nowhere'}"], f"--data_dir: {tmp_path / 'nowhere'} is not a folder"),
             ([f"--data_dir={osie}", f"--labelled_split={tmp_path / 'bad.json'}"],
              f"--labelled_split: {tmp_path / 'bad.json'}"),
             ([f"--data_dir={osie}", f"--imagenet_weights={tmp_path / 'none.tflite'}"],
              f"--imagenet_weights: {tmp_path / 'none.tflite'} is not a file")]
    for flags, message in cases:
        done = subprocess.run(base + flags, capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and "distillation_ablation: error: " + message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_whole_chain_on_the_fixture_and_resumes(test_data, tmp_path):
    osie = test_data / "datasets" / "osie"
    validation = json.loads((osie / "osie_split.json").read_text())["validation"]
    for name, train in (("labelled", ["1001.jpg"]), ("unlabelled", ["1002.jpg"])):
        (tmp_path / f"{name}.json").write_text(json.dumps({"train": train, "validation": validation}))
    command = [sys.executable, str(PROGRAM), f"--data_dir={osie}", f"--out_dir={tmp_path / 'out'}",
               f"--labelled_split={tmp_path / 'labelled.json'}", f"--unlabelled_split={tmp_path / 'unlabelled.json'}",
               f"--hint_split={osie / 'osie_split.json'}", "--size=64x64", "--batch_size=1", "--seeds=0",
               "--teacher_epochs=1", "--hint_epochs=1", "--epochs=1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "out" / "table.md").read_text()
    conditions = [line.split(" | ")[0].strip("| ") for line in table.splitlines()[2:]]
    assert conditions == ["labelled only", "labelled only, 2× epochs", "labelled + pseudo-labelled", "hint + labelled",
                          "hint + labelled + pseudo-labelled", "teacher (FastSal-C, labelled half)"]
    runs = ("teacher_c", "labelled_s0", "labelled_long_s0", "labelled_pseudo_s0", "hint_labelled_s0",
            "hint_labelled_pseudo_s0")
    epochs = {run: len((tmp_path / "out" / run / "log.csv").read_text().splitlines()) - 1 for run in runs}
    assert epochs == {"teacher_c": 1, "labelled_s0": 1, "labelled_long_s0": 2, "labelled_pseudo_s0": 1,
                      "hint_labelled_s0": 1, "hint_labelled_pseudo_s0": 1}
    for run in runs:
        assert (tmp_path / "out" / "eval" / run / "per_image.csv").is_file()
    again = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and again.stdout.count("done already") == 8, again.stdout


def test_read_per_image_takes_the_model_row_and_names_a_bad_file(tmp_path):
    from fastsal_tf.evaluation.comparison import read_per_image

    path = tmp_path / "per_image.csv"
    path.write_text("model,image_id,cc,nss,auc_judd,kld\nm,a,0.5,2.0,0.9,0.4\ncenter bias,a,0.3,1.0,0.7,1.2\n"
                    "m,b,0.7,3.0,0.95,0.2\n")
    assert read_per_image(path) == {"a": {"cc": 0.5, "nss": 2.0, "auc_judd": 0.9, "kld": 0.4},
                                    "b": {"cc": 0.7, "nss": 3.0, "auc_judd": 0.95, "kld": 0.2}}
    assert read_per_image(path, ("cc",), row="center bias") == {"a": {"cc": 0.3}}
    with pytest.raises(ValueError, match=f"{path}: no row"):
        read_per_image(path, ("cc", "sim"))
    compare = ROOT / "benchmarks" / "compare_evaluations.py"
    done = subprocess.run([sys.executable, str(compare), f"A={tmp_path / 'missing'}"], capture_output=True, text=True)
    assert done.returncode == 2 and "compare_evaluations: error:" in done.stderr and "missing" in done.stderr


def test_compare_evaluations_averages_the_runs_of_a_condition(tmp_path):
    ccs = {"base": (0.5, 0.7), "s0": (0.6, 0.9), "s1": (0.4, 0.9)}  # per-image CC of images a, b
    for run, (a, b) in ccs.items():
        (tmp_path / run).mkdir()
        (tmp_path / run / "per_image.csv").write_text(
            f"model,image_id,cc,nss,auc_judd,kld\nm,a,{a},2.0,0.9,0.4\nm,b,{b},3.0,0.9,0.4\n")
    compare = ROOT / "benchmarks" / "compare_evaluations.py"
    done = subprocess.run([sys.executable, str(compare), f"B={tmp_path / 'base'}",
                           f"R={tmp_path / 's0'},{tmp_path / 's1'}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| R |")).split(" | ")
    # seed-averaged per-image CC: a 0.5, b 0.9 → mean 0.7; paired Δ to B: 0.0, +0.2 → +0.1 ± 0.1
    assert row[1:3] == ["2", "0.700 ± 0.200"] and row[-2] == "+0.1000 ± 0.1000" and row[-1] == "0.750, 0.650 |"
    twice = subprocess.run([sys.executable, str(compare), f"B={tmp_path / 'base'}", f"B={tmp_path / 's0'}"],
                           capture_output=True, text=True, timeout=120)
    assert twice.returncode == 2 and "given twice" in twice.stderr
    empty = subprocess.run([sys.executable, str(compare), f"B={tmp_path / 'base'},"], capture_output=True, text=True,
                           timeout=120)
    assert empty.returncode == 2 and "empty folder name" in empty.stderr
