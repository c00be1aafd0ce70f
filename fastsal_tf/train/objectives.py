"""Training objectives of fine-tuning: which loss is applied to which output and target.

Targets come from the data pipeline (fastsal_tf.data.pipeline): "density" (sums to 1), "density_max1"
(max 1), "fixation_map" (binary) and, with pseudo-labels, "teacher". Outputs come from build_fastsal:
"logits", "map", "prob".
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from fastsal_tf import losses

KINDS = ("kld_cc", "salgan", "deepgaze")


@dataclasses.dataclass(frozen=True)
class Objective:
    """A fine-tuning loss, a callable (targets dict, outputs dict) → scalar.

    kind:
      "kld_cc"   — on the `prob` output: KLD(target ‖ prob) + cc_weight·(1 − CC(target, prob)), with the
                   ground-truth density and/or a teacher's map (turned into a density) as targets, minus
                   nss_weight·NSS(fixation map, prob) on the ground truth when nss_weight > 0.
      "salgan"   — paper eq. 2 on the `map` output: BCE(map, density_max1) + BCE(map, teacher map).
      "deepgaze" — paper eq. 3 on the `prob` output against a teacher's probability map
                   (0.5·KL + 0.2·(1 − cos) + 0.3·BCE), plus the kld_cc ground-truth term when enabled.
    use_ground_truth / use_teacher switch the two sources (the paper's Table V ablation); at least one.
    """

    kind: str = "kld_cc"
    use_ground_truth: bool = True
    use_teacher: bool = False
    cc_weight: float = 0.5
    teacher_weight: float = 1.0
    nss_weight: float = 0.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"objective kind must be one of {KINDS}, got {self.kind!r}")
        if not (self.use_ground_truth or self.use_teacher):
            raise ValueError("an objective needs the ground truth, the teacher, or both")
        if self.kind == "deepgaze" and not self.use_teacher:
            raise ValueError("the 'deepgaze' objective (paper eq. 3) distils a teacher: enable the teacher")

    @property
    def required_targets(self):
        keys = []
        if self.use_ground_truth:
            keys.append("density_max1" if self.kind == "salgan" else "density")
            if self.kind != "salgan" and self.nss_weight:
                keys.append("fixation_map")
        if self.use_teacher:
            keys.append("teacher")
        return tuple(keys)

    def on_ground_truth(self):
        """The objective's ground-truth part, for labelled validation sets (they carry no teacher maps):
        itself without the teacher term; a teacher-only or "deepgaze" objective becomes "kld_cc" on the
        ground truth with the same weights."""
        if not self.use_teacher:
            return self
        kind = "kld_cc" if self.kind == "deepgaze" else self.kind
        return dataclasses.replace(self, kind=kind, use_ground_truth=True, use_teacher=False)

    def kld_cc(self, target, prob):
        return tf.reduce_mean(losses.kld(target, prob)) + self.cc_weight * tf.reduce_mean(losses.cc_loss(target, prob))

    def __call__(self, targets, outputs):
        missing = [k for k in self.required_targets if k not in targets]
        if missing:
            raise ValueError(f"objective {self.kind!r} needs the target(s) {missing}; the dataset provides "
                             f"{sorted(targets)} (a teacher target needs pseudo-labels)")
        if self.kind == "salgan":
            return losses.salgan_teacher_loss(
                outputs["logits"], targets["density_max1"] if self.use_ground_truth else None,
                targets["teacher"] if self.use_teacher else None, teacher_weight=self.teacher_weight)
        total = tf.constant(0.0)
        if self.use_ground_truth:
            total += self.kld_cc(targets["density"], outputs["prob"])
            if self.nss_weight:
                total += self.nss_weight * tf.reduce_mean(losses.nss_loss(targets["fixation_map"], outputs["prob"]))
        if self.use_teacher:
            if self.kind == "deepgaze":
                total += self.teacher_weight * losses.deepgaze_teacher_loss(outputs["logits"], targets["teacher"])
            else:
                total += self.teacher_weight * self.kld_cc(targets["teacher"], outputs["prob"])
        return total
