"""Runs a .tflite on LiteRT's GPU accelerator (ML Drift, the WebGPU build that ships in the ai-edge-litert
wheel) through a software Vulkan device (SwiftShader, from Debian's chromium package) and compares the
outputs with the CPU: a real run of the GPU kernels, not a phone. Tooling for benchmarks and tests, not
part of the library (fastsal_tf.export.gpu_compat is the static check).

  python benchmarks/litert_gpu.py model.tflite
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np

from fastsal_tf.export.flatbuffer import model_bytes
from fastsal_tf.export.parity import make_interpreter, run_tflite

_VULKAN_CANDIDATES = ("/usr/lib/chromium/vk_swiftshader_icd.json",)

_CHILD = r"""
import json, sys, numpy as np
from ai_edge_litert.compiled_model import CompiledModel
from ai_edge_litert.hardware_accelerator import HardwareAccelerator
from ai_edge_litert.options import Options
from ai_edge_litert.gpu_options import GpuOptions
path, image_path, out_dir, enforce_f32 = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
result = {"compiled": False}
try:
    options = Options(hardware_accelerators=HardwareAccelerator.GPU | HardwareAccelerator.CPU,
                      gpu_options=GpuOptions(enforce_f32=enforce_f32))
    model = CompiledModel.from_buffer(open(path, "rb").read(), options=options)
    result["compiled"] = True
    result["fully_accelerated"] = bool(model.is_fully_accelerated())
    inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
    details = model.get_output_tensor_details("serving_default")
    inputs[0].write(np.load(image_path))
    model.run_by_index(0, inputs, outputs)
    for i, (name, d) in enumerate(details.items()):
        y = outputs[i].read(int(np.prod(d["shape"])), np.dtype(d["dtype"])).reshape(d["shape"])
        np.save(f"{out_dir}/{name}.npy", y)
    result["outputs"] = list(details)
except Exception as error:
    result["error"] = str(error)[:500]
print("LITERT_GPU_RESULT " + json.dumps(result), flush=True)
"""


def find_vulkan_icd():
    """A Vulkan ICD manifest for the LiteRT WebGPU accelerator: $VK_ICD_FILENAMES, else the SwiftShader
    (software Vulkan) one of Debian's chromium package; None when there is none."""
    explicit = os.environ.get("VK_ICD_FILENAMES")
    if explicit:
        return explicit
    return next((path for path in _VULKAN_CANDIDATES if os.path.isfile(path)), None)


def litert_gpu_run(model, image=None, vulkan_icd=None, enforce_f32=True, timeout=300):
    """Runs a .tflite (path or bytes) on LiteRT's GPU accelerator (ML Drift, WebGPU build of the
    ai-edge-litert wheel) in a subprocess, on the Vulkan device of `vulkan_icd` (default
    `find_vulkan_icd()`; SwiftShader is a CPU implementation of Vulkan), GPU first with CPU fallback.
    Returns None when no Vulkan ICD is available, else {"compiled", "fully_accelerated", "unsupported":
    {op: reason} (from the accelerator's log), "max_abs_diff": {output: |GPU − CPU| max}, "error"}.
    image: one input array (default: a random one of the input's shape and dtype)."""
    icd = vulkan_icd or find_vulkan_icd()
    if icd is None:
        return None
    data = model_bytes(model)
    interpreter = make_interpreter(data, num_threads=1)
    detail = interpreter.get_input_details()[0]
    if image is None:
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, detail["shape"]).astype(detail["dtype"])
    image = np.asarray(image, detail["dtype"]).reshape(detail["shape"])
    env = dict(os.environ, VK_ICD_FILENAMES=icd)
    icd_dir = os.path.dirname(os.path.abspath(icd))
    if os.path.isfile(os.path.join(icd_dir, "libvulkan.so.1")):  # chromium ships its own Vulkan loader
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [icd_dir, env.get("LD_LIBRARY_PATH")]))
    with tempfile.TemporaryDirectory() as tmp:
        model_path, image_path = pathlib.Path(tmp, "model.tflite"), pathlib.Path(tmp, "image.npy")
        model_path.write_bytes(data)
        np.save(image_path, image)
        try:
            run = subprocess.run([sys.executable, "-c", _CHILD, str(model_path), str(image_path), tmp,
                                  "1" if enforce_f32 else "0"], env=env, capture_output=True, text=True,
                                 timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"compiled": False, "error": f"timed out after {timeout} s"}
        line = next((l for l in run.stdout.splitlines() if l.startswith("LITERT_GPU_RESULT ")), None)
        result = json.loads(line.split(" ", 1)[1]) if line else {
            "compiled": False, "error": f"exit code {run.returncode}: {run.stderr.strip()[-500:]}"}
        result["unsupported"] = _unsupported_from_log(run.stderr)
        if result.get("outputs"):
            cpu = run_tflite(data, [image[0]], num_threads=1)
            result["max_abs_diff"] = {name: float(np.abs(np.load(pathlib.Path(tmp, f"{name}.npy")).astype(np.float64)
                                                         - cpu[name][None].astype(np.float64)).max())
                                      for name in result.pop("outputs")}
    return result


def _unsupported_from_log(log):
    """{op: reason} from the delegate's "Following operations are not supported by GPU delegate:" block."""
    found, inside = {}, False
    for line in log.splitlines():
        if "not supported by GPU delegate" in line:
            inside = True
            continue
        if inside:
            match = re.match(r"^([A-Z][A-Z0-9_]+): (.*)$", line.strip())
            if not match:
                inside = False
                continue
            found.setdefault(match.group(1), match.group(2))
    return found


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="run a .tflite on LiteRT's GPU accelerator (software Vulkan)")
    parser.add_argument("model", help="a .tflite file")
    args = parser.parse_args(argv)
    result = litert_gpu_run(args.model)
    if result is None:
        print("litert_gpu.py: no Vulkan ICD (set VK_ICD_FILENAMES or install chromium)", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
