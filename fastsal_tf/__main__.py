import sys

from fastsal_tf.cli import main

sys.exit(main())
