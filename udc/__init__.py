"""udc: compressible TinyML models for microcontroller NPUs, shipped as int8 TFLite.

tensorflow-model-optimization needs Keras 2, which TensorFlow picks only if
TF_USE_LEGACY_KERAS is set before TensorFlow is first imported: importing udc sets
it (see udc.compat). The public API below is imported on first use, so `import udc`
stays cheap. The packages and what may import what: docs/layout.md.
"""

import importlib
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

__version__ = "0.1.0"

_API = {
    # data and backbones
    "load_splits": "udc.data",
    "make_splits": "udc.data",
    "load_raw": "udc.data",
    "build_backbone": "udc.models",
    # search: the whole path from a config, or its steps
    "search_and_export": "udc.workflows.pipeline",
    "SupernetSearch": "udc.search.loop",
    "ArchSpec": "udc.arch",
    # deploy: strip a chosen child, QAT fine-tune, convert, export and measure
    "strip": "udc.deploy.strip",
    "finetune": "udc.deploy.finetune",
    "convert_to_int8": "udc.deploy.convert",
    "export_model": "udc.deploy.export",
    "measure_tflite": "udc.deploy.export",
    "load_model": "udc.deploy.model_io",
    "TfliteClassifier": "udc.deploy.interpreter",
    "inspect_model": "udc.report.inspect",
    # targets
    "get_target": "udc.targets",
    "target_names": "udc.targets",
}

__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'udc' has no attribute '{name}'")
