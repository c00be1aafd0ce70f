"""Weight averaging ("model soup", Wortsman et al., ICML 2022): one network whose every weight is the mean
of that weight over several fine-tuned networks of one architecture.

Average only networks fine-tuned from the same starting point (the same `--init` and decoder seed, e.g. one
recipe with different regularisers): they stay in one basin of the loss, and the mean often generalises
better than each member. Networks from different starting points do not line up unit by unit, and their
mean is worse than either.
"""

from __future__ import annotations

import pathlib

import keras
import numpy as np

from fastsal_tf.train.callbacks import save_atomically


def _layout(network):
    return [(v.path, tuple(v.shape)) for v in network.weights]


def average_networks(networks):
    """networks[0], with each of its weights (trainable or not, BatchNorm statistics included) set to the
    mean of the same weight over `networks` (float64 mean, stored in the weight's dtype). ValueError when
    there are fewer than two or they differ in name or in their weights' paths and shapes."""
    networks = list(networks)
    if len(networks) < 2:
        raise ValueError(f"averaging needs at least two networks, got {len(networks)}")
    first = networks[0]
    for index, other in enumerate(networks[1:], start=2):
        if other.name != first.name or _layout(other) != _layout(first):
            mismatch = next(((a, b) for a, b in zip(_layout(first), _layout(other)) if a != b), None)
            detail = f" (first difference: {mismatch[0]} against {mismatch[1]})" if mismatch else ""
            raise ValueError(f"network {index} ({other.name}, {len(other.weights)} weights) is not the architecture "
                             f"of network 1 ({first.name}, {len(first.weights)} weights){detail}")
    for i, variable in enumerate(first.weights):
        mean = np.mean([np.asarray(n.weights[i].numpy(), np.float64) for n in networks], axis=0)
        variable.assign(mean.astype(variable.dtype))
    return first


def average_model_files(paths, out_path):
    """Loads the .keras files `paths`, averages them (`average_networks`) and writes the mean to out_path
    (.keras, atomically). ValueError naming a file that is missing or not a Keras model."""
    import fastsal_tf.models  # noqa: F401  (registers FastSal's layers for loading)

    if not str(out_path).endswith(".keras"):
        raise ValueError(f"the output must be a .keras file, got {out_path}")
    networks = []
    for path in paths:
        if not pathlib.Path(path).is_file():
            raise ValueError(f"model not found: {path}")
        try:
            networks.append(keras.saving.load_model(path, compile=False))
        except Exception as error:  # Keras raises many types for a file that is not a model
            raise ValueError(f"{path}: not a loadable .keras model ({type(error).__name__})") from None
    network = average_networks(networks)
    save_atomically(network, out_path)
    return network
