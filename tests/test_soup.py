"""Weight averaging (model soup): the mean of each weight, architecture checks, files in and out."""

import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from fastsal_tf.models import build_fastsal
from fastsal_tf.train.soup import average_model_files, average_networks

ROOT = pathlib.Path(__file__).resolve().parents[1]


def network(variant="A", seed=0):
    keras.utils.set_random_seed(seed)
    net = build_fastsal(variant, (64, 64, 3))
    rng = np.random.default_rng(seed)  # BatchNorm statistics differ too, so they are averaged as well
    for v in net.non_trainable_weights:
        v.assign(rng.uniform(0.5, 1.5, v.shape).astype(v.dtype))
    return net


def test_every_weight_is_the_mean_of_the_members():
    members = [network(seed=s) for s in (0, 1, 2)]
    before = [[v.numpy() for v in m.weights] for m in members]
    assert not np.allclose(before[0][0], before[1][0])
    soup = average_networks(members)
    assert soup is members[0] and len(soup.weights) == len(before[0]) > 100
    for i, v in enumerate(soup.weights):
        expected = (before[0][i].astype(np.float64) + before[1][i] + before[2][i]) / 3
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-6, atol=1e-7, err_msg=v.path)
    image = np.random.default_rng(3).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    prob = soup.predict(image, verbose=0)["prob"]
    assert prob.shape == (1, 64, 64, 1) and np.isclose(prob.sum(), 1.0, atol=1e-4)


def test_other_architectures_and_a_single_network_are_refused():
    with pytest.raises(ValueError, match="network 2 .*fastsal_C.* is not the architecture of network 1 .*fastsal_A"):
        average_networks([network("A"), network("C")])
    with pytest.raises(ValueError, match="at least two"):
        average_networks([network("A")])


def test_files_are_averaged_and_bad_files_named(tmp_path):
    paths = []
    for seed in (0, 1):
        paths.append(tmp_path / f"m{seed}.keras")
        network(seed=seed).save(paths[-1])
    out = tmp_path / "soup.keras"
    average_model_files(paths, out)
    loaded = keras.saving.load_model(out)
    kernel = [keras.saving.load_model(p).get_layer("logits").kernel.numpy() for p in paths]
    np.testing.assert_allclose(loaded.get_layer("logits").kernel.numpy(), (kernel[0] + kernel[1]) / 2, rtol=1e-6)
    assert not list(tmp_path.glob(".*partial*"))

    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    for bad, message in [(tmp_path / "missing.keras", "model not found: .*missing.keras"),
                         (tmp_path / "junk.keras", "junk.keras: not a loadable .keras model")]:
        with pytest.raises(ValueError, match=message):
            average_model_files([paths[0], bad], tmp_path / "never.keras")
    with pytest.raises(ValueError, match="must be a .keras file"):
        average_model_files(paths, tmp_path / "soup.h5")
    assert not (tmp_path / "never.keras").exists() and not (tmp_path / "soup.h5").exists()


def test_program_reports_a_missing_model_and_exits_2(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "training" / "average_weights.py"),
                             f"--models={tmp_path / 'a.keras'},{tmp_path / 'b.keras'}", f"--out={tmp_path / 's.keras'}"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert f"average_weights: error: model not found: {tmp_path / 'a.keras'}" in result.stderr
