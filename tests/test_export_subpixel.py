"""The head convolution moved in front of the last pixel shuffle (fastsal_tf.export.subpixel): same values as
the original graph, checked by running both; left alone where it does not apply."""

import keras
import numpy as np
import pytest

from fastsal_tf.export.subpixel import fold_head_into_shuffle
from fastsal_tf.models.layers import PixelShuffle


def head_model(order="DCR", channels=8, filters=1, kernel=3, block=2, **conv):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((6, 10, channels))
    x = PixelShuffle(block, order)(inputs)
    outputs = keras.layers.Conv2D(filters, kernel, padding=conv.pop("padding", "same"),
                                  bias_initializer="random_normal", name="logits", **conv)(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("order, channels, filters, kernel, block",
                         [("DCR", 8, 1, 3, 2), ("CRD", 8, 1, 3, 2), ("DCR", 8, 2, 5, 2), ("CRD", 9, 1, 3, 3)])
def test_folded_head_gives_the_same_values(order, channels, filters, kernel, block):
    model = head_model(order, channels, filters, kernel, block)
    folded = fold_head_into_shuffle(model)
    assert folded is not model
    assert isinstance(folded.layers[-1], PixelShuffle) and folded.layers[-1].order == "DCR"
    assert folded.layers[-2].strides == (1, 1) and folded.layers[-2].filters == filters * block * block
    x = np.random.default_rng(0).normal(size=(2, 6, 10, channels)).astype(np.float32)
    expected, got = model(x).numpy(), folded(x).numpy()
    assert got.shape == expected.shape == (2, 6 * block, 10 * block, filters)
    np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("change", [{"strides": 2}, {"activation": "relu"}, {"padding": "valid"},
                                    {"dilation_rate": 2}, {"channels": 48}])
def test_heads_it_does_not_apply_to_are_left_alone(change):
    channels = change.pop("channels", 8)
    model = head_model(channels=channels, **change)
    assert fold_head_into_shuffle(model) is model


def test_model_without_a_shuffle_before_its_head_is_left_alone():
    inputs = keras.Input((8, 8, 2))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs))
    assert fold_head_into_shuffle(model) is model
