"""Parity of imported authors' checkpoints with the reference outputs of their PyTorch code (../shared)."""

import numpy as np
import pytest
from PIL import Image

from fastsal_tf.models import describe
from fastsal_tf.weights.torch_checkpoint import CheckpointError
from fastsal_tf.weights.torch_import import import_torch_checkpoint

FILES = {"A": ["random_A.pth", "random_A_convkeys.pth"], "C": ["random_C.pth", "random_C_zip.pth"]}


def per_image_cc(a, b):
    return [np.corrcoef(x.ravel(), y.ravel())[0, 1] for x, y in zip(a, b)]


def vectors(shared_dir, variant):
    return np.load(shared_dir / "reference" / f"vectors_{variant}.npz")


@pytest.mark.parametrize("variant,filename", [(v, f) for v, names in FILES.items() for f in names])
def test_logits_match_reference_on_normalised_inputs(shared_dir, variant, filename):
    ref = vectors(shared_dir, variant)
    model = import_torch_checkpoint(shared_dir / "reference" / filename, normalization="none", heads=("logits",))
    assert describe(model)["variant"] == variant
    logits = model.predict(ref["inputs"].transpose(0, 2, 3, 1), batch_size=2, verbose=0)["logits"][..., 0]
    expected = ref["logits"][:, 0]
    assert np.abs(logits - expected).max() <= 1e-3
    assert min(per_image_cc(logits, expected)) >= 0.99999


@pytest.mark.parametrize("variant", ["A", "C"])
def test_photo_files_through_our_preprocessing_match_reference(shared_dir, variant):
    """End to end from the JPEG files: PIL LANCZOS stretch to 256×192, RGB 0–255 into the model,
    whose own ImageNet normalisation must reproduce the authors' preprocessing."""
    ref = vectors(shared_dir, variant)
    names = [str(n) for n in ref["input_names"][2:]]
    images = np.stack([np.asarray(Image.open(shared_dir / "data" / "coco_examples" / n).convert("RGB")
                                  .resize((256, 192), Image.LANCZOS), dtype=np.float32) for n in names])
    model = import_torch_checkpoint(shared_dir / "reference" / f"random_{variant}.pth", heads=("logits", "map"))
    out = model.predict(images, batch_size=2, verbose=0)
    expected = ref["logits"][2:, 0]
    assert np.abs(out["logits"][..., 0] - expected).max() <= 1e-3
    assert min(per_image_cc(out["logits"][..., 0], expected)) >= 0.99999
    np.testing.assert_allclose(out["map"][..., 0], ref["sigmoid"][2:, 0], atol=1e-4)


def test_wrong_variant_is_refused(shared_dir):
    with pytest.raises(CheckpointError, match=r"random_C\.pth.*FastSal-C"):
        import_torch_checkpoint(shared_dir / "reference" / "random_C.pth", variant="A")


def test_predictor_on_a_photo_reproduces_the_authors_network_output(shared_dir):
    """fastsal_tf.load_model on an authors' .pth resizes like their script (PIL LANCZOS), so its network
    frame probability map is the softmax of the reference logits; the map comes back at the photo size."""
    import fastsal_tf

    ref = vectors(shared_dir, "A")
    model = fastsal_tf.load_model(shared_dir / "reference" / "random_A.pth")
    prepared = model.prepare(shared_dir / "data" / "coco_examples" / str(ref["input_names"][2]))
    net = model.infer([prepared])[0]
    logits = ref["logits"][2, 0].astype(np.float64)
    expected = np.exp(logits - logits.max())
    np.testing.assert_allclose(net, expected / expected.sum(), rtol=2e-3, atol=1e-9)
    prob = model.finish(prepared, net)
    assert prob.shape == (480, 640) and abs(prob.sum() - 1) < 1e-5
