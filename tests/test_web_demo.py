"""The web demo (tflite/web) in headless Chromium: the map LiteRT.js computes in the page equals the
Python LiteRT (ai_edge_litert) map of the same .tflite on the same input.

Needs the web-test extras (.ci/web-setup): Debian's chromium (or $CHROMIUM), node, and
tflite/web/node_modules from `npm ci` (playwright-core, @litertjs/core); skips when one is missing.
Run with: python -m pytest -q -m web tests/test_web_demo.py
"""

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import threading

import numpy as np
import pytest

pytestmark = pytest.mark.web

ROOT = pathlib.Path(__file__).resolve().parents[1]
WEB = ROOT / "tflite" / "web"
SIZE = (192, 256)  # (height, width) of the test model
NODE_MODULES = ("playwright-core/package.json", "@litertjs/core/dist/index.js", "@litertjs/core/wasm",
                "@litertjs/wasm-utils/dist/index.js")


def _chromium():
    path = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


@pytest.fixture(scope="module")
def web_tools():
    """(node, chromium) or a skip naming what is missing."""
    node, chromium = shutil.which("node"), _chromium()
    missing = [name for name, found in (("node", node), ("chromium ($CHROMIUM or /usr/bin/chromium)", chromium))
               if not found]
    missing += [f"tflite/web/node_modules/{part}" for part in NODE_MODULES
                if not (WEB / "node_modules" / part).exists()]
    if missing:
        pytest.skip("web test extras missing (run .ci/web-setup): " + ", ".join(missing))
    return node, chromium


@pytest.fixture(scope="module")
def site(web_tools, tmp_path_factory):
    """A folder with the test model (random FastSal-A, fp32, uint8 input, map output) and the test image
    (a deterministic synthetic PNG already at the model size, so neither side resamples it)."""
    import keras
    from PIL import Image

    from fastsal_tf.export.images import synthetic_images
    from fastsal_tf.export.litert import export_tflite
    from fastsal_tf.models import build_fastsal

    folder = tmp_path_factory.mktemp("web_site")
    image = synthetic_images(1, SIZE, seed=7)[0]
    Image.fromarray(image).save(folder / "image.png")

    keras.utils.set_random_seed(0)
    model = build_fastsal("A", (*SIZE, 3))
    # A random network's logits are nearly constant (std ~6e-5: the map is 0.5 ± 1e-5); rescale the last
    # convolution so that the logits have mean 0 and std 1.5 on the test image and the map spans ~[0, 1].
    logits = np.asarray(model(image[None].astype(np.float32), training=False)["logits"])
    layer = model.get_layer("logits")
    kernel, bias = layer.get_weights()
    scale = 1.5 / float(logits.std())
    layer.set_weights([kernel * scale, (bias - float(logits.mean())) * scale])
    export_tflite(model, folder / "model.tflite", mode="fp32", input_dtype="uint8", outputs=("map",),
                  validation_images=[image])
    return folder, image


@pytest.fixture(scope="module")
def server(site):
    """The demo's own server (tflite/web/serve.py) on 127.0.0.1 and a free port, the site under /test/."""
    spec = importlib.util.spec_from_file_location("fastsal_web_serve", WEB / "serve.py")
    serve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serve)
    httpd = serve.make_server("127.0.0.1", 0, WEB, mounts={"/test/": site[0]}, quiet=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def _python_map(model_path, image):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model_path), num_threads=2)
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner("serving_default")
    return np.asarray(runner(image=image[None])["saliency_map"], np.float64)[0, ..., 0]


def test_browser_map_matches_python_litert(web_tools, site, server, record_property):
    node, chromium = web_tools
    folder, image = site
    command = [node, str(WEB / "headless.mjs"), f"{server}/?model=/test/model.tflite", "/test/image.png",
               "--runs", "3", "--with-input", "--timeout", "120"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "CHROMIUM": chromium})
    assert done.returncode == 0, f"headless run failed:\n{done.stderr[-4000:]}"
    answer = json.loads(done.stdout.strip().splitlines()[-1])

    assert (answer["height"], answer["width"]) == SIZE
    assert answer["outputName"] == "saliency_map" and answer["outputDtype"] == "float32"
    assert answer["model"]["inputDtype"] == "uint8"
    # The page fed the model exactly the PNG's pixels (no resampling, colour conversion or premultiply).
    fed = np.asarray(answer["input"], np.uint8).reshape(*SIZE, 3)
    assert np.array_equal(fed, image), f"{np.count_nonzero(fed != image)} input bytes differ"

    browser = np.asarray(answer["map"], np.float64).reshape(SIZE)
    python = _python_map(folder / "model.tflite", image)
    assert python.std() > 0.05, "the test map is nearly constant: the comparison would mean little"
    cc = float(np.corrcoef(browser.ravel(), python.ravel())[0, 1])
    max_abs = float(np.abs(browser - python).max())
    record_property("web_cc", cc)
    record_property("web_max_abs", max_abs)
    record_property("web_inference_ms", answer["medianMs"])
    print(f"\nweb demo vs Python LiteRT: CC={cc:.9f} max|diff|={max_abs:.3g}; browser inference "
          f"median {answer['medianMs']:.1f} ms over {len(answer['runs'])} runs ({answer['userAgent']})")
    assert cc >= 0.99
    assert max_abs <= 1e-4  # both run the fp32 graph with XNNPACK: agreement to float rounding
