"""The Keras side of an export: the logits model at the export size (rebuilding a FastSal model built at
another size), what the metadata says about it, and the traced serving function with its float tail."""

from __future__ import annotations

from fastsal_tf.export.spec import INPUT_NAME, OUTPUT_NAMES, TAIL_PREFIX, ExportError


def logits_model(model, input_size):
    """A Keras model mapping (N, H, W, 3) float RGB 0–255 at `input_size` to the (N, H, W, 1) logits of
    `model`. Uses the "logits" output / layer of a FastSal model (or the single output of another model);
    a FastSal model built for another size is rebuilt at `input_size` with its weights copied."""
    import keras

    built = tuple(model.input_shape[1:3]) if not isinstance(model.input_shape, list) else None
    if built is None:
        raise ExportError("the model must have a single image input")
    if any(side not in (None, want) for side, want in zip(built, input_size)):
        model = rebuild_fastsal(model, input_size)
    try:
        outputs = model.output
    except AttributeError:  # a Sequential model that was never called on an input
        raise ExportError("the model has no defined output (give a FastSal .keras file)") from None
    if isinstance(outputs, dict):
        if "logits" in outputs:
            logits = outputs["logits"]
        else:
            logits = logits_layer_output(model)
    elif isinstance(outputs, (list, tuple)):
        logits = logits_layer_output(model) if len(outputs) != 1 else outputs[0]
    else:
        logits = outputs
    if len(logits.shape) != 4 or logits.shape[-1] != 1:
        raise ExportError(f"the model's logits must be (N, H, W, 1), got {tuple(logits.shape)}")
    return keras.Model(model.inputs[0], logits, name=f"{model.name}_logits")


def logits_layer_output(model):
    try:
        return model.get_layer("logits").output
    except ValueError:
        raise ExportError("the model has several outputs and neither a 'logits' output nor a 'logits' layer") from None


def rebuild_fastsal(model, input_size):
    """The FastSal `model` rebuilt at input_size (height, width) with a logits head (fastsal_tf.models.rebuild)."""
    from fastsal_tf.models import rebuild

    try:
        return rebuild(model, (*input_size, 3), heads=("logits",))
    except ValueError:
        raise ExportError(f"the model was built for input {model.input_shape[1:3]} and is not a FastSal model "
                          f"that can be rebuilt at {input_size[0]}x{input_size[1]}") from None


def model_description(model):
    """What the metadata says about the source model (variant, normalisation...), best effort."""
    from fastsal_tf.models import describe
    from fastsal_tf.models.layers import NORMALIZATIONS

    try:
        info = describe(model)
    except ValueError:  # not one of our models
        info = {"name": model.name, "variant": None, "normalization": None}
    norm = info.get("normalization")
    if norm in NORMALIZATIONS:
        mean, std = NORMALIZATIONS[norm]
        info["normalization_mean"], info["normalization_std"] = [float(m) for m in mean], [float(s) for s in std]
    return info


# ------------------------------------------------------------------------------------- conversion

def trace_serving(keras_logits, input_size, input_dtype, outputs, map_dtype):
    """The fixed-shape batch-1 serving function (cast → model → float tail), traced once.
    Returns (concrete function, a tf.Module holding its variables, {graph output tensor name: output name})."""
    import tensorflow as tf

    height, width = input_size

    def serve(image):
        x = tf.cast(image, tf.float32)
        logits = tf.cast(keras_logits(x, training=False), tf.float32)
        result = {}
        if "map" in outputs:
            saliency = tf.math.sigmoid(logits, name=TAIL_PREFIX + "sigmoid")
            if map_dtype == "uint8":
                scaled = tf.multiply(saliency, 255.0, name=TAIL_PREFIX + "scale")
                saliency = tf.cast(tf.round(scaled, name=TAIL_PREFIX + "round"), tf.uint8, name=TAIL_PREFIX + "cast")
            result[OUTPUT_NAMES["map"]] = saliency
        if "prob" in outputs:
            flat = tf.reshape(logits, (1, height * width), name=TAIL_PREFIX + "flatten")
            prob = tf.nn.softmax(flat, axis=-1, name=TAIL_PREFIX + "softmax")
            result[OUTPUT_NAMES["prob"]] = tf.reshape(prob, (1, height, width, 1), name=TAIL_PREFIX + "unflatten")
        if "logits" in outputs:
            result[OUTPUT_NAMES["logits"]] = tf.identity(logits, name=TAIL_PREFIX + "logits")
        return result

    spec = tf.TensorSpec((1, height, width, 3), tf.uint8 if input_dtype == "uint8" else tf.float32, name=INPUT_NAME)
    module = tf.Module()
    module.model_variables = [getattr(v, "value", v) for v in keras_logits.weights]
    module.serve = tf.function(serve, input_signature=[spec], autograph=False)
    function = module.serve.get_concrete_function()
    names = {tensor.name.split(":")[0]: name for name, tensor in function.structured_outputs.items()}
    return function, module, names
