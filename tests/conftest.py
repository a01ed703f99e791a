import os

# tf_keras must be chosen before TensorFlow is first imported (see DESIGN.md).
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
