"""`fastsal benchmark` and fastsal_tf.export.benchmark on a tiny exported model."""

import json

import keras
import numpy as np
import pytest

from fastsal_tf.export import export_tflite
from fastsal_tf.export.benchmark import benchmark_keras, benchmark_tflite


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((32, 64, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", name="logits")(x), name="tiny")
    path = tmp_path_factory.mktemp("bench") / "tiny.tflite"
    export_tflite(model, path, input_size=(32, 64))
    return model, path


def check_summary(result, runs):
    assert result["runs"] == runs
    assert 0 < result["min_ms"] <= result["p50_ms"] <= result["p90_ms"]
    assert result["fps"] == pytest.approx(1000.0 / result["p50_ms"])


def test_benchmark_tflite(tiny):
    result = benchmark_tflite(tiny[1], threads=1, runs=7, warmup=2)
    check_summary(result, 7)
    assert result["threads"] == 1 and result["runtime"] == "litert" and result["size_bytes"] > 0
    with pytest.raises(ValueError):
        benchmark_tflite(tiny[1], runs=0)


def test_benchmark_keras(tiny):
    result = benchmark_keras(tiny[0], (32, 64), threads=2, runs=5, warmup=1)
    check_summary(result, 5)
    assert result["runtime"] == "tf.function"


def test_cli_benchmark(tiny, capsys):
    from fastsal_tf.cli import main

    assert main(["benchmark", str(tiny[1]), "--runs", "5", "--warmup", "1", "--threads", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    check_summary(result, 5)
    assert main(["benchmark", str(tiny[1]), "--runs", "3", "--warmup", "0"]) == 0
    assert "p50" in capsys.readouterr().out and np.isfinite(result["fps"])
    assert main(["benchmark", "model.keras"]) == 2


def test_cli_benchmark_names_a_missing_or_corrupt_file(tmp_path, capsys):
    from fastsal_tf.cli import main

    assert main(["benchmark", str(tmp_path / "absent.tflite")]) == 2
    assert "absent.tflite" in capsys.readouterr().err
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer")
    assert main(["benchmark", str(junk)]) == 2
    assert "junk.tflite: not a LiteRT model file" in capsys.readouterr().err
