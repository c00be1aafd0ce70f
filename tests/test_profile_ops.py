"""benchmarks/profile_ops.py: a bad model file is one message naming it and status 2, before any timing."""

import importlib.util
import pathlib

import pytest

_PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "profile_ops.py"
_SPEC = importlib.util.spec_from_file_location("profile_ops", _PATH)
profile_ops = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(profile_ops)


@pytest.mark.parametrize("content,message", [
    (None, "no such file"),
    (b"", "the model file is empty"),
    (b"not a flatbuffer at all", "not a LiteRT model file"),
    (b"\x10\x00\x00\x00TFL3" + b"\xff" * 16, "not a readable LiteRT model"),
])
def test_bad_model_files_are_named(tmp_path, monkeypatch, capsys, content, message):
    model = tmp_path / "m.tflite"
    if content is not None:
        model.write_bytes(content)
    monkeypatch.setattr("sys.argv", ["profile_ops.py", str(model)])
    assert profile_ops.main() == 2
    err = capsys.readouterr().err
    assert str(model) in err and message in err and "Traceback" not in err
