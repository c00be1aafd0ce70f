"""benchmarks/generalisation.py on the fixtures, with folders of maps as the models: per-set tables, paired
differences checked against numpy, reuse of finished evaluations, and argument errors."""

import importlib.util
import pathlib

import numpy as np
import pytest

from fastsal_tf import fixations as fx
from fastsal_tf.data.registry import read_dataset

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATASETS = ROOT / "tests" / "data" / "datasets"
_spec = importlib.util.spec_from_file_location("generalisation", ROOT / "benchmarks" / "generalisation.py")
generalisation = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generalisation)


def centred_gaussian(height, width, sd):
    yy, xx = np.mgrid[0:height, 0:width]
    return np.exp(-(((yy - height / 2) / sd) ** 2 + ((xx - width / 2) / sd) ** 2) / 2)


def test_tables_paired_differences_and_reuse(tmp_path, capsys):
    examples = read_dataset("eyecrowd", DATASETS / "eyecrowd")
    truth, guess = tmp_path / "truth", tmp_path / "guess"
    truth.mkdir()
    guess.mkdir()
    expected = []
    for example in examples:
        hw = (example.height, example.width)
        density = fx.density_map(fx.rasterize(example.fixations, hw), 26.0)
        np.save(truth / f"{example.id}.npy", density)
        other = centred_gaussian(*hw, sd=4.0 + len(example.fixations))
        np.save(guess / f"{example.id}.npy", other)
        expected.append(np.corrcoef(other.ravel(), density.ravel())[0, 1] - 1.0)
    args = ["--osie-dir", str(DATASETS / "osie"), "--extra-dir", str(DATASETS), "--out", str(tmp_path / "out"),
            "--sets", "EyeCrowd", f"truth={truth}", f"guess={guess}"]
    assert generalisation.main(args) == 0
    out, err = capsys.readouterr()
    assert err.count("evaluating") == 2
    rows = {line.split(" | ")[0].strip("| "): line for line in out.splitlines() if line.startswith("| ")}
    assert rows["truth"].startswith("| truth | 1 | 1.000 ± 0.000 |")
    delta = np.array(expected)
    se = np.std(delta, ddof=1) / np.sqrt(len(delta))
    assert f"{delta.mean():+.4f} ± {se:.4f}" in rows["guess"]
    assert generalisation.main(args) == 0  # both evaluations are reused
    out_again, err = capsys.readouterr()
    assert "evaluating" not in err and out_again == out


@pytest.mark.parametrize("conditions, message", [
    (["nomodel"], "expected NAME=MODEL"),
    (["a=x,"], "expected NAME=MODEL"),
    (["a=x", "a=y"], "given twice"),
])
def test_bad_arguments_exit_2(tmp_path, capsys, conditions, message):
    with pytest.raises(SystemExit) as exit_info:
        generalisation.main(["--osie-dir", "o", "--extra-dir", "e", "--out", str(tmp_path), *conditions])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_unknown_set_and_missing_model_are_clear(tmp_path, capsys):
    with pytest.raises(SystemExit):
        generalisation.main(["--osie-dir", "o", "--extra-dir", "e", "--out", str(tmp_path), "--sets", "MIT", "a=x"])
    assert "unknown ['MIT']" in capsys.readouterr().err
    code = generalisation.main(["--osie-dir", str(DATASETS / "osie"), "--extra-dir", str(DATASETS), "--out",
                                str(tmp_path), "--sets", "EyeCrowd", f"a={tmp_path / 'missing.keras'}"])
    assert code == 2 and "a=" in capsys.readouterr().err


def test_flip_ensemble_of_one_model_is_the_mean_of_its_plain_and_mirrored_maps(tmp_path):
    """ensemble_function against the predictor called directly, on an asymmetric image."""
    from PIL import Image

    from fastsal_tf.api import load_model

    pixels = np.zeros((60, 80, 3), np.uint8)
    pixels[10:30, 5:25] = 255  # a bright block on the left
    Image.fromarray(pixels).save(tmp_path / "x.png")
    predictor = load_model("default")
    plain = predictor.predict_map(pixels)
    mirrored = predictor.predict_map(np.ascontiguousarray(pixels[:, ::-1]))[:, ::-1]
    assert np.abs(plain - mirrored).max() > 1e-6
    np.testing.assert_allclose(generalisation.ensemble_function("flip:default")(tmp_path / "x.png"),
                               (plain + mirrored) / 2, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(generalisation.ensemble_function("default+default")(tmp_path / "x.png"), plain,
                               rtol=1e-6, atol=1e-12)
    assert generalisation.evaluation_dir(tmp_path, "EyeCrowd", "flip:default+default-c", None).name.startswith(
        "default+default-c_flip_")


def test_shipped_names_are_stamped_by_their_file_so_a_new_asset_is_evaluated_again():
    from fastsal_tf.runtime.resolve import ASSETS_DIR, SHIPPED_MODELS

    stamp = generalisation._stamp("flip:default+default-c")
    files = [ASSETS_DIR / SHIPPED_MODELS["default"], ASSETS_DIR / SHIPPED_MODELS["default-c"]]
    assert [m["model"] for m in stamp["members"]] == [str(f.resolve()) for f in files]
    assert [m["bytes"] for m in stamp["members"]] == [f.stat().st_size for f in files]
    # the same file under two names shares one evaluation
    assert (generalisation.evaluation_dir(pathlib.Path("o"), "EyeCrowd", "default", None).name.split("_")[-1]
            == generalisation.evaluation_dir(pathlib.Path("o"), "EyeCrowd", "default-a", None).name.split("_")[-1])
