"""Keras models that train a FastSal network with `model.fit`: fine-tuning on saliency targets and
hint-loss pretraining against a teacher's features. They wrap the network (`.network`), which is what
gets saved; the wrapper only adds the loss and the logged saliency metrics."""

from __future__ import annotations

import keras
import tensorflow as tf

from fastsal_tf import losses

TARGET_KEYS = ("density", "density_max1", "fixation_map", "teacher")


def per_replica_share(loss):
    """Divides a replica's mean loss by the number of replicas: tf.distribute sums the replicas'
    gradients, and Keras multiplies the logged loss back (as it does for compiled losses)."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / tf.cast(replicas, loss.dtype) if replicas > 1 else loss


def fit_pairs(element):
    """Pipeline element dict → (image, {target name: tensor}) for SaliencyTrainer."""
    return element["image"], {k: element[k] for k in TARGET_KEYS if k in element}


class SaliencyTrainer(keras.Model):
    """Fine-tunes `network` (a build_fastsal model with the logits and prob heads) on `objective`
    (fastsal_tf.train.objectives.Objective). Logs per-image CC, KLD, SIM (prob vs the ground-truth
    density) and NSS (prob vs the fixation map) when those targets are present. The validation loss is the
    objective's ground-truth part (Objective.on_ground_truth): validation sets have no teacher maps."""

    def __init__(self, network, objective, **kwargs):
        super().__init__(**kwargs)
        missing = {"logits", "prob"} - set(network.output)
        if missing:
            raise ValueError(f"the network must have the heads 'logits' and 'prob' for training; missing {sorted(missing)}")
        self.network = network
        self.objective = objective
        self.validation_objective = objective.on_ground_truth()
        self.built = True  # all weights live in the (built) network
        self.cc_metric = losses.CCMetric()
        self.kld_metric = losses.KLDMetric()
        self.sim_metric = losses.SIMMetric()
        self.nss_metric = losses.NSSMetric()

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = (self.objective if training else self.validation_objective)(y, y_pred)
        if self.losses:
            loss += tf.add_n(self.losses)
        return per_replica_share(loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if "density" in y:
            for metric in (self.cc_metric, self.kld_metric, self.sim_metric):
                metric.update_state(y["density"], y_pred["prob"])
        if "fixation_map" in y:
            self.nss_metric.update_state(y["fixation_map"], y_pred["prob"])
        return self.get_metrics_result()


class HintTrainer(keras.Model):
    """Hint-loss pretraining (paper eq. 1): `student` (build_hint_model, outputs hint_0..hint_3) regresses
    the features of a frozen `teacher` (any Keras model taking the same RGB 0–255 images and returning
    four feature maps of the student's shapes, as a list or a dict with sorted keys)."""

    def __init__(self, student, teacher, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        teacher.trainable = False
        self.built = True  # all weights live in the (built) student and teacher
        student_shapes = [tuple(student.output[f"hint_{i}"].shape[1:]) for i in range(4)]
        teacher_shapes = [tuple(t.shape[1:]) for t in self.teacher_outputs(teacher.output)]
        if len(teacher_shapes) != 4:
            raise ValueError(f"the teacher must return 4 feature maps for the hint loss, it returns {len(teacher_shapes)}")
        for i, (s, t) in enumerate(zip(student_shapes, teacher_shapes)):
            if None not in s and None not in t and s != t:
                raise ValueError(f"teacher feature {i} has shape {t} but the student's hint_{i} has {s}: the teacher's "
                                 "four layers must match (H/2, 128), (H/4, 256), (H/8, 512), (H/16, 512)")

    @staticmethod
    def teacher_outputs(outputs):
        return [outputs[k] for k in sorted(outputs)] if isinstance(outputs, dict) else list(outputs)

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        teacher = self.teacher_outputs(self.teacher(x, training=False))
        return per_replica_share(losses.hint_loss([y_pred[f"hint_{i}"] for i in range(4)], teacher))
