"""Readers: one per dataset format, each yielding SaliencyExample in the internal conventions."""

from fastsal_tf.data.readers.cat2000 import read_cat2000
from fastsal_tf.data.readers.eyecrowd import eyecrowd_split, read_eyecrowd
from fastsal_tf.data.readers.folder import read_fixation_file, read_folder
from fastsal_tf.data.readers.hamburg import hamburg_split, read_hamburg
from fastsal_tf.data.readers.mit import read_mit300, read_mit1003
from fastsal_tf.data.readers.osie import osie_split, read_osie
from fastsal_tf.data.readers.photos import read_photos
from fastsal_tf.data.readers.rss2015 import read_rss2015
from fastsal_tf.data.readers.salicon import read_salicon, read_salicon_api, read_salicon_api_split

__all__ = ["eyecrowd_split", "hamburg_split", "osie_split", "read_cat2000", "read_eyecrowd", "read_fixation_file",
           "read_folder", "read_hamburg", "read_mit1003", "read_mit300", "read_osie", "read_photos", "read_rss2015",
           "read_salicon", "read_salicon_api", "read_salicon_api_split"]
