"""Saliency datasets: readers, tensorflow-datasets builders and the tf.data input pipeline."""

from fastsal_tf.data.example import SaliencyExample

__all__ = ["SaliencyExample"]
