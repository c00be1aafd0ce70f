"""Teachers for hint pretraining (paper eq. 1): a frozen network whose four intermediate feature maps the
student's adaptation layers regress.

A hint teacher takes the student's input, RGB 0–255 images (N, H, W, 3), and returns four feature maps
with the shapes of the student's hints: (H/2, W/2, 128), (H/4, W/4, 256), (H/8, W/8, 512), (H/16, W/16, 512).
Any preprocessing the teacher needs (mean subtraction, BGR order, ...) must be inside it.

`load_teacher(path, outputs, input_shape)` accepts
  * a .keras model: its outputs are chosen by name (`outputs="a,b,c,d"`, in hint order; a name may also be
    an intermediate layer of a functional model, so an encoder–decoder that only outputs its saliency map
    can be used as it is), or all its outputs sorted by name when it has exactly four;
  * a SavedModel directory: wrapped with `keras.layers.TFSMLayer(path, call_endpoint="serving_default")`
    in a functional model; the signature's outputs are chosen the same way;
  * "vgg16": `salgan_like_vgg_teacher` below (weights from an explicit local file only).

Wrapping a SalGAN-like VGG16 encoder–decoder: SalGAN's generator encoder is VGG16's convolutional part,
so its hint layers are block2_conv2 (128 @ H/2), block3_conv3 (256 @ H/4), block4_conv3 (512 @ H/8) and
block5_conv3 (512 @ H/16). `salgan_like_vgg_teacher` builds that encoder from keras.applications.VGG16 with
the VGG preprocessing inside; load your encoder weights into it (a Keras weights file whose layer names
are VGG16's, e.g. SalGAN's encoder converted to Keras, or VGG16's ImageNet "no top" file) and save it:

    teacher = salgan_like_vgg_teacher((192, 256, 3), weights="salgan_encoder.weights.h5")
    teacher.save("salgan_teacher.keras")
    # python training/pretrain.py --teacher=salgan_teacher.keras ...   (outputs sorted by name = hint order)

A whole SalGAN (encoder + decoder) saved as .keras works too, with
`--teacher_outputs=block2_conv2,block3_conv3,block4_conv3,block5_conv3` naming its encoder layers.
"""

from __future__ import annotations

import os
import pathlib

import keras

from fastsal_tf.models.decoders import HINT_CHANNELS
from fastsal_tf.models.layers import VGGPreprocess
from fastsal_tf.runtime.backends import named_outputs
from fastsal_tf.runtime.resolve import ModelRef, load_keras

VGG_HINT_LAYERS = ("block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
BUILTIN_TEACHERS = ("vgg16",)


def hint_shapes(input_shape):
    """The four (h, w, c) feature shapes a teacher must return for a student input (H, W, 3)."""
    height, width = input_shape[:2]
    return [(height // 2 ** (i + 1), width // 2 ** (i + 1), c) for i, c in enumerate(HINT_CHANNELS)]


def salgan_like_vgg_teacher(input_shape=(192, 256, 3), weights=None):
    """A SalGAN-like VGG16 encoder as a hint teacher: input RGB 0–255 (the VGG preprocessing is inside),
    outputs {"block2_conv2": 128 @ H/2, "block3_conv3": 256 @ H/4, "block4_conv3": 512 @ H/8,
    "block5_conv3": 512 @ H/16} (sorted names = hint order).

    weights: None (random; tests) or the path of a local Keras weights file for VGG16 without its top
    (layer names block1_conv1 ... block5_conv3). Nothing is ever downloaded: "imagenet" is refused —
    download `vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5` yourself and give its path.
    """
    if weights is not None:
        weights = os.fspath(weights)
        if weights == "imagenet" or not pathlib.Path(weights).is_file():
            raise ValueError(f"VGG16 teacher weights must be a local weights file, got {weights!r} (nothing is "
                             "downloaded; save VGG16's 'notop' ImageNet file or your SalGAN encoder weights first)")
    inputs = keras.Input(tuple(input_shape), name="image")
    preprocessed = VGGPreprocess(name="vgg_preprocess")(inputs)
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_tensor=preprocessed)
    if weights is not None:
        vgg.load_weights(weights)
    outputs = {name: vgg.get_layer(name).output for name in VGG_HINT_LAYERS}
    return keras.Model(inputs, outputs, name="salgan_vgg16_teacher")


def _select(available, model, names, source):
    """The chosen tensors in hint order: by name (outputs, else intermediate layers), or all sorted."""
    if not names:
        if len(available) != 4:
            raise ValueError(f"{source}: the teacher has {len(available)} outputs {sorted(available)}; a hint teacher "
                             "needs 4 feature maps — name them (teacher_outputs='a,b,c,d', outputs or layer names)")
        return [available[k] for k in sorted(available)], sorted(available)
    if len(names) != 4:
        raise ValueError(f"{source}: give 4 teacher output names for the 4 hints, got {len(names)}: {names}")
    chosen = []
    layer_names = {layer.name for layer in getattr(model, "layers", [])} if model is not None else set()
    for name in names:
        if name in available:
            chosen.append(available[name])
        elif name in layer_names:
            chosen.append(model.get_layer(name).output)
        else:
            where = f"outputs {sorted(available)}" + (" or its layers" if layer_names else "")
            raise ValueError(f"{source}: the teacher has no output or layer {name!r} (it has {where})")
    return chosen, list(names)


def check_teacher(teacher, input_shape, names=None, source="teacher"):
    """Raises ValueError unless `teacher` (list outputs) returns the four hint shapes for input_shape."""
    expected = hint_shapes(input_shape)
    outputs = teacher.output if isinstance(teacher.output, (list, tuple)) else [teacher.output]
    if isinstance(teacher.output, dict):
        outputs = [teacher.output[k] for k in sorted(teacher.output)]
    names = names or [f"output {i}" for i in range(len(outputs))]
    if len(outputs) != 4:
        raise ValueError(f"{source}: a hint teacher must return 4 feature maps, it returns {len(outputs)}")
    problems = []
    for i, (tensor, want, name) in enumerate(zip(outputs, expected, names)):
        got = tuple(tensor.shape[1:])
        if len(got) != 3 or any(g is not None and g != w for g, w in zip(got, want)):
            problems.append(f"hint_{i} ← {name}: {got}, expected {want}")
    if problems:
        raise ValueError(f"{source}: teacher feature shapes do not match the student's hints for input "
                         f"{tuple(input_shape)} (H/2×128, H/4×256, H/8×512, H/16×512): " + "; ".join(problems))


def load_teacher(path, outputs="", input_shape=(192, 256, 3), weights=None):
    """A frozen hint teacher as a Keras model with a list of 4 outputs in hint order, checked against
    the student's hint shapes for input_shape. See the module docstring for what `path` may be.

    outputs: a comma-separated list (or a sequence) of 4 output / layer names; empty: all outputs,
    sorted by name. weights: the local weights file of the "vgg16" teacher. Raises ValueError.
    """
    names = [n.strip() for n in outputs.split(",") if n.strip()] if isinstance(outputs, str) else list(outputs)
    input_shape = tuple(input_shape)
    source = os.fspath(path)
    file = pathlib.Path(source)
    if source in BUILTIN_TEACHERS:
        model = salgan_like_vgg_teacher(input_shape, weights)
        available = named_outputs(model)
        inputs = model.inputs
    elif file.is_dir():
        if not (file / "saved_model.pb").is_file():
            raise ValueError(f"{source}: a directory teacher must be a SavedModel (no saved_model.pb in it)")
        inputs = [keras.Input(input_shape, name="image")]
        try:
            layer = keras.layers.TFSMLayer(source, call_endpoint="serving_default")
            result = layer(inputs[0])
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(f"{source}: cannot call the SavedModel's serving_default signature on "
                             f"{input_shape} RGB images ({error})") from error
        available = dict(result) if isinstance(result, dict) else {"output_0": result}
        model = None
    elif file.suffix == ".keras":
        if not file.is_file():
            raise ValueError(f"{source}: teacher file not found")
        model = load_keras(ModelRef(file, "keras"), role="teacher")
        available = named_outputs(model)
        inputs = model.inputs
        if len(inputs) != 1:
            raise ValueError(f"{source}: a hint teacher takes one image input, this model has {len(inputs)}")
        shape = tuple(inputs[0].shape[1:])
        if len(shape) != 3 or any(s is not None and s != w for s, w in zip(shape, input_shape)):
            raise ValueError(f"{source}: the teacher's input {shape} does not accept the student's input {input_shape}")
    else:
        raise ValueError(f"{source}: a teacher must be a .keras file, a SavedModel directory or one of "
                         f"{BUILTIN_TEACHERS}")
    chosen, chosen_names = _select(available, model, names, source)
    if model is not None and tuple(inputs[0].shape[1:]) != input_shape:
        # a flexible-size teacher: rebuild its graph on the student's fixed input shape
        teacher = keras.Model(inputs, chosen, name="hint_teacher")
        image = keras.Input(input_shape, name="image")
        teacher = keras.Model(image, teacher(image), name="hint_teacher")
    else:
        teacher = keras.Model(inputs, chosen, name="hint_teacher")
    teacher.trainable = False
    check_teacher(teacher, input_shape, chosen_names, source)
    return teacher
