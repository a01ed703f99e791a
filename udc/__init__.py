"""udc: compressible TinyML models for microcontroller NPUs, shipped as int8 TFLite.

tensorflow-model-optimization needs Keras 2, which TensorFlow picks only if
TF_USE_LEGACY_KERAS is set before TensorFlow is first imported: importing any udc
module sets it (see udc.compat).
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

__version__ = "0.1.0"
