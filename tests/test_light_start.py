"""`fastsal predict` with the default model (and any shipped LiteRT model) starts without TensorFlow: parsing,
--help, `info` on a .tflite and predicting run in a fresh interpreter, which must end with neither tensorflow
nor keras imported."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Runs the commands given as a JSON list of argument lists in this process, then prints the exit statuses
# and the heavy modules that got imported, as JSON.
SCRIPT = """
import contextlib, io, json, sys
from fastsal_tf.cli import main
codes = []
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            codes.append(main(argv))
        except SystemExit as done:  # --help
            codes.append(done.code)
heavy = sorted(name for name in ("tensorflow", "keras", "tf_keras") if name in sys.modules)
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


def run_fresh(commands) -> dict:
    result = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(commands)], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_litert_predict_help_and_info_import_no_tensorflow(tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(photo)
    out = tmp_path / "out"
    commands = [["--help"], ["predict", "--help"], ["info", "default-int8"],
                ["predict", str(photo), "--out", str(out)], ["predict", str(photo), "--model", "default-int8",
                                                               "--out", str(out / "int8")]]
    found = run_fresh(commands)
    assert found == {"codes": [0, 0, 0, 0, 0], "heavy": []}
    assert Image.open(out / "photo_saliency.png").size == (64, 48)


@pytest.mark.slow  # the control: a Keras model does import TensorFlow (about 10 s)
def test_a_keras_model_still_imports_tensorflow():
    found = run_fresh([["info", str(ROOT / "fastsal_tf" / "assets" / "fastsal_c.keras"), "--json"]])
    assert found["codes"] == [0] and "tensorflow" in found["heavy"] and "keras" in found["heavy"]
