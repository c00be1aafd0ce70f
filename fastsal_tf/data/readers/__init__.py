"""Readers: one per dataset format, each yielding SaliencyExample in the internal conventions."""

from fastsal_tf.data.readers.cat2000 import read_cat2000
from fastsal_tf.data.readers.folder import read_fixation_file, read_folder
from fastsal_tf.data.readers.mit import read_mit300, read_mit1003
from fastsal_tf.data.readers.osie import osie_split, read_osie
from fastsal_tf.data.readers.salicon import read_salicon, read_salicon_api, read_salicon_api_split

__all__ = ["osie_split", "read_cat2000", "read_fixation_file", "read_folder", "read_mit1003", "read_mit300",
           "read_osie", "read_salicon", "read_salicon_api", "read_salicon_api_split"]
