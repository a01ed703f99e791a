"""The one place that picks the Keras flavour.

tensorflow-model-optimization 0.8.1 only works with Keras 2 (`tf_keras`). TensorFlow
reads TF_USE_LEGACY_KERAS when it is first imported, so this module must be imported
before anything else imports TensorFlow; every udc module gets `tf` and `keras` here.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
