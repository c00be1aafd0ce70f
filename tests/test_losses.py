"""fastsal_tf.losses against the numpy metrics and plain numpy formulas; gradients; Keras fit/save."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from fastsal_tf import losses, metrics

N, H, W = 3, 24, 32


def batch(seed):
    """(N, H, W, 1) positive predictions, density maps and binary fixation maps (float64 numpy)."""
    rng = np.random.default_rng(seed)
    pred = rng.random((N, H, W, 1)) + 0.05
    density = rng.random((N, H, W, 1)) ** 4 + 0.01
    fixated = (rng.random((N, H, W, 1)) < 0.05).astype(np.float64)
    fixated[:, 0, 0] = 1.0  # at least one fixation per image
    return pred, density, fixated


def per_image(metric, y_true, y_pred):
    return np.array([metric(p[..., 0], t[..., 0]) for t, p in zip(y_true, y_pred)])


PER_IMAGE = [  # (TF function, numpy metric, which ground truth)
    (losses.cc, metrics.cc, "density"),
    (losses.kld, metrics.kld, "density"),
    (losses.sim, metrics.sim, "density"),
    (losses.nss, metrics.nss, "fixations"),
]


def truth(kind, density, fixated):
    return density if kind == "density" else fixated


@pytest.mark.parametrize("tf_fn, np_fn, kind", PER_IMAGE)
@pytest.mark.parametrize("seed", [0, 1])
def test_per_image_values_match_the_numpy_metrics(tf_fn, np_fn, kind, seed):
    pred, density, fixated = batch(seed)
    y_true = truth(kind, density, fixated)
    got = tf_fn(tf.constant(y_true, tf.float32), tf.constant(pred, tf.float32)).numpy()
    assert got.shape == (N,)
    np.testing.assert_allclose(got, per_image(np_fn, y_true, pred), atol=1e-5)


@pytest.mark.parametrize("loss, np_fn, to_loss, kind", [
    (losses.cc_loss, metrics.cc, lambda v: 1 - v, "density"),
    (losses.kld_loss, metrics.kld, lambda v: v, "density"),
    (losses.sim_loss, metrics.sim, lambda v: 1 - v, "density"),
    (losses.nss_loss, metrics.nss, lambda v: -v, "fixations"),
])
def test_keras_losses_are_the_metrics_turned_into_losses(loss, np_fn, to_loss, kind):
    pred, density, fixated = batch(2)
    y_true = truth(kind, density, fixated)
    np.testing.assert_allclose(loss(y_true, pred).numpy(), to_loss(per_image(np_fn, y_true, pred)), atol=1e-5)


@pytest.mark.parametrize("metric_cls, np_fn, kind", [
    (losses.CCMetric, metrics.cc, "density"),
    (losses.KLDMetric, metrics.kld, "density"),
    (losses.SIMMetric, metrics.sim, "density"),
    (losses.NSSMetric, metrics.nss, "fixations"),
])
def test_streaming_metrics_average_per_image_values_over_batches(metric_cls, np_fn, kind):
    metric = metric_cls()
    expected = []
    for seed, size in [(3, N), (4, 1)]:  # unequal batches: the mean is over images, not batches
        pred, density, fixated = batch(seed)
        y_true = truth(kind, density, fixated)[:size]
        metric.update_state(y_true.astype(np.float32), pred[:size].astype(np.float32))
        expected.extend(per_image(np_fn, y_true, pred[:size]))
    assert float(metric.result()) == pytest.approx(np.mean(expected), abs=1e-5)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_degenerate_inputs_give_finite_values_and_gradients():
    _, density, fixated = batch(5)
    constant = tf.Variable(tf.fill((N, H, W, 1), 0.5))
    no_fixations = np.zeros_like(fixated)
    for loss, y_true in [(losses.cc_loss, density), (losses.kld_loss, density), (losses.sim_loss, density),
                         (losses.nss_loss, fixated), (losses.nss_loss, no_fixations)]:
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(loss(y_true, constant))
        gradient = tape.gradient(value, constant)
        assert np.isfinite(value.numpy()) and np.all(np.isfinite(gradient.numpy())), loss.__name__
    np.testing.assert_allclose(losses.cc(density, constant).numpy(), 0.0)


@pytest.mark.parametrize("loss, kind", [(losses.cc_loss, "density"), (losses.kld_loss, "density"),
                                        (losses.sim_loss, "density"), (losses.nss_loss, "fixations")])
def test_gradients_are_finite_and_descending_improves_the_loss(loss, kind):
    pred, density, fixated = batch(6)
    y_true = truth(kind, density, fixated)
    variable = tf.Variable(pred.astype(np.float32))
    with tf.GradientTape() as tape:
        value = tf.reduce_mean(loss(y_true, variable))
    gradient = tape.gradient(value, variable)
    assert np.all(np.isfinite(gradient.numpy())) and np.any(gradient.numpy() != 0)
    step = 1e-3 / float(tf.reduce_max(tf.abs(gradient)))
    assert float(tf.reduce_mean(loss(y_true, variable - step * gradient))) < float(value)


def test_shape_mismatch_raises():
    pred, density, _ = batch(7)
    with pytest.raises(ValueError, match="must match"):
        losses.cc_loss(density[:, :-1], pred)
    with pytest.raises(ValueError, match="shape"):
        losses.hint_loss([np.zeros((1, 4, 4, 8))], [np.zeros((1, 4, 4, 9))])
    with pytest.raises(ValueError, match="matching"):
        losses.hint_loss([np.zeros((1, 4, 4, 8))], [])


# ---------- distillation losses against numpy formulas ----------

def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_bce(target, logits):
    p = sigmoid(logits)
    return np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p)))


def test_hint_loss_is_the_sum_of_per_layer_mean_squared_errors():
    rng = np.random.default_rng(8)
    shapes = [(2, 12, 16, 8), (2, 6, 8, 16), (2, 3, 4, 32), (2, 3, 4, 32)]
    student = [tf.Variable(rng.normal(size=s).astype(np.float32)) for s in shapes]
    teacher = [tf.Variable(rng.normal(size=s).astype(np.float32)) for s in shapes]
    with tf.GradientTape(persistent=True) as tape:
        value = losses.hint_loss(student, teacher)
    expected = sum(np.mean((s.numpy() - t.numpy()) ** 2) for s, t in zip(student, teacher))
    assert float(value) == pytest.approx(expected, rel=1e-5)
    for s, t in zip(student, teacher):
        np.testing.assert_allclose(tape.gradient(value, s).numpy(), 2 * (s.numpy() - t.numpy()) / s.numpy().size,
                                   rtol=1e-4, atol=1e-9)
        assert tape.gradient(value, t) is None


def test_salgan_teacher_loss_terms_weights_and_switches():
    rng = np.random.default_rng(9)
    logits = rng.normal(size=(N, H, W, 1)).astype(np.float32)
    gt, teacher = rng.random((2, N, H, W, 1)).astype(np.float32)
    both = losses.salgan_teacher_loss(logits, gt, teacher, gt_weight=0.7, teacher_weight=2.0)
    assert float(both) == pytest.approx(0.7 * np_bce(gt, logits) + 2.0 * np_bce(teacher, logits), rel=1e-5)
    assert float(losses.salgan_teacher_loss(logits, ground_truth=gt)) == pytest.approx(np_bce(gt, logits), rel=1e-5)
    assert float(losses.salgan_teacher_loss(logits, teacher_map=teacher)) == pytest.approx(
        np_bce(teacher, logits), rel=1e-5)
    with pytest.raises(ValueError, match="needs"):
        losses.salgan_teacher_loss(logits)
    variable, teacher_variable = tf.Variable(logits), tf.Variable(teacher)
    with tf.GradientTape(persistent=True) as tape:
        value = losses.salgan_teacher_loss(variable, gt, teacher_variable)
    assert np.all(np.isfinite(tape.gradient(value, variable).numpy()))
    assert tape.gradient(value, teacher_variable) is None


def test_deepgaze_teacher_loss_matches_the_formula():
    rng = np.random.default_rng(10)
    logits = rng.normal(size=(N, H, W, 1)).astype(np.float64)
    teacher = rng.random((N, H, W, 1)) ** 3
    teacher /= teacher.sum(axis=(1, 2, 3), keepdims=True)
    expected_terms = []
    for z, t in zip(logits.reshape(N, -1), teacher.reshape(N, -1)):
        q = np.exp(z - z.max())
        q /= q.sum()
        kl = np.sum(t * np.log(t / q))
        cosine = q @ t / (np.linalg.norm(q) * np.linalg.norm(t))
        expected_terms.append((kl, cosine))
    kl, cosine = np.mean(expected_terms, axis=0)
    scaled = (teacher - teacher.min(axis=(1, 2, 3), keepdims=True)) / np.ptp(teacher, axis=(1, 2, 3), keepdims=True)
    expected = 0.5 * kl + 0.2 * (1 - cosine) + 0.3 * np_bce(scaled, logits)
    got = losses.deepgaze_teacher_loss(logits.astype(np.float32), teacher.astype(np.float32))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    only_kl = losses.deepgaze_teacher_loss(logits, teacher * 5.0, kl_weight=1.0, cos_weight=0.0, bce_weight=0.0)
    assert float(only_kl) == pytest.approx(kl, rel=1e-5)  # the teacher is renormalised to sum to one
    variable = tf.Variable(logits.astype(np.float32))
    with tf.GradientTape() as tape:
        value = losses.deepgaze_teacher_loss(variable, teacher)
    assert np.all(np.isfinite(tape.gradient(value, variable).numpy()))


# ---------- Keras integration ----------

def tiny_model():
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("loss, kind, metric_list", [
    (losses.kld_loss, "density", [losses.CCMetric(), losses.KLDMetric(), losses.SIMMetric()]),
    (losses.nss_loss, "fixations", [losses.NSSMetric()]),
    (losses.cc_loss, "density", []),
    (losses.sim_loss, "density", []),
])
def test_fit_one_step_save_and_load(tmp_path, loss, kind, metric_list):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(11)
    x = rng.random((4, 8, 8, 3)).astype(np.float32)
    y = rng.random((4, 8, 8, 1)).astype(np.float32) ** 4 if kind == "density" else (
        rng.random((4, 8, 8, 1)) < 0.2).astype(np.float32)
    model = tiny_model()
    model.compile(optimizer="sgd", loss=loss, metrics=metric_list)
    # mode="auto" needs each metric to say whether higher is better (Keras raises otherwise)
    stoppers = [keras.callbacks.EarlyStopping(monitor=m.name) for m in metric_list]
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=stoppers)
    for stopper in stoppers:
        assert stopper.monitor_op is (keras.ops.less if stopper.monitor == "kld" else keras.ops.greater)
    names = {"loss"} | {m.name for m in metric_list}
    assert names <= set(history.history)
    assert all(np.isfinite(history.history[name][0]) for name in names)
    path = tmp_path / "tiny.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored.evaluate(x, y, verbose=0, return_dict=True)["loss"],
                               model.evaluate(x, y, verbose=0, return_dict=True)["loss"], rtol=1e-6)
    assert restored.loss is loss  # deserialised through the "fastsal" registration
