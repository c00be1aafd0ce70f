"""Saliency datasets: readers, tensorflow-datasets builders and the tf.data input pipeline.

Light to import (no TensorFlow): the readers and the registry. The TensorFlow parts live in
fastsal_tf.data.pipeline (build_pipeline, PipelineConfig), .augment (Augmentation), .geometry
(letterbox_params, unletterbox, resize_image), .pseudo_labels (PseudoLabelWriter, read_pseudo_labels) and
.builders (tensorflow-datasets builders).
"""

from fastsal_tf.data.errors import DatasetError, ReadResult
from fastsal_tf.data.example import SaliencyExample
from fastsal_tf.data.readers import osie_split
from fastsal_tf.data.registry import DATASETS, get_reader, read_dataset

__all__ = ["DATASETS", "DatasetError", "ReadResult", "SaliencyExample", "get_reader", "osie_split", "read_dataset"]
