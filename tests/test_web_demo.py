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


@pytest.fixture(scope="module")
def answer(web_tools, server):
    """The page's answer for the test image (headless.mjs: a warm-up run, then 3 timed runs)."""
    node, chromium = web_tools
    command = [node, str(WEB / "headless.mjs"), f"{server}/?model=/test/model.tflite", "/test/image.png",
               "--runs", "3", "--with-input", "--timeout", "120"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "CHROMIUM": chromium})
    assert done.returncode == 0, f"headless run failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_browser_map_matches_python_litert(site, answer, record_property):
    folder, image = site
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


def test_browser_centre_and_crops_match_python(site, answer):
    """The page's centre and crops (decisions.js on its map) against the Python library's on the same image."""
    from fastsal_tf import api
    from fastsal_tf.predict import decisions
    from fastsal_tf.imaging import centered_gaussian

    folder, _ = site
    model = api.load_model(folder / "model.tflite")
    aspects = [crop["aspect"] for crop in answer["crops"]]
    assert aspects == ["1:1", "16:9", "9:16"]  # the page's default ratios
    assert (answer["imageHeight"], answer["imageWidth"]) == SIZE
    prob = model.predict_map(folder / "image.png")
    prior = centered_gaussian(SIZE, decisions.PRIOR_SIGMA, np.float64)
    # Where the two maps' float rounding makes near-ties, a different but equally good answer is fine: compare
    # the mass the page's choice holds under the Python map with the best.
    q = (1 - decisions.CROP_PRIOR) * prob + decisions.CROP_PRIOR * prior
    python_boxes = model.predict_crops(folder / "image.png", aspects)
    for aspect, python_box, crop in zip(aspects, python_boxes, answer["crops"]):
        x0, y0, x1, y1 = crop["box"]
        assert (x1 - x0, y1 - y0) == (python_box[2] - python_box[0], python_box[3] - python_box[1]), aspect
        best = q[python_box[1]:python_box[3], python_box[0]:python_box[2]].sum()
        assert tuple(crop["box"]) == python_box or q[y0:y1, x0:x1].sum() >= best - 1e-7, (aspect, crop, python_box)
    python_center = model.predict_center(folder / "image.png")
    q = (1 - decisions.CENTER_PRIOR) * prob + decisions.CENTER_PRIOR * prior
    ys, xs = np.indices(SIZE)
    radius2 = (decisions.CENTER_RADIUS * np.hypot(*SIZE)) ** 2

    def disk_mass(point):
        return q[(xs - point[0]) ** 2 + (ys - point[1]) ** 2 <= radius2].sum()

    assert (np.allclose(answer["center"], python_center)
            or disk_mass(answer["center"]) >= disk_mass(python_center) - 1e-7)
    print(f"\nweb demo decisions: centre {answer['center']} (Python {python_center}); crops {answer['crops']}")
