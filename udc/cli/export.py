"""udc-export: int8 .tflite from a trained tf_keras model (or an existing .tflite), measured
by LiteRT, Vela and TFLite Micro, with report.json, report.md and definition.yaml."""

from pathlib import Path

from absl import flags

from udc.cli.common import loaded_config, run_binary
from udc.cli.flags import define_accelerator_flag, define_config_flag

_CONFIG = define_config_flag()
_MODEL = flags.DEFINE_string("model", None, "A tf_keras model (.keras/.h5/SavedModel) or an int8 .tflite.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where to write (default: beside --model).")
_NAME = flags.DEFINE_string("name", "model", "Base name of the written files.")
_ACCELERATOR = define_accelerator_flag()
flags.mark_flags_as_required(["config", "model"])


def main(argv):
    del argv
    from udc import tflite_file
    from udc.targets import target_of

    config = loaded_config(_CONFIG)
    model_path = Path(_MODEL.value)
    output_dir = Path(_OUTPUT_DIR.value) if _OUTPUT_DIR.value else model_path.parent
    # Bad input fails before the dataset is loaded, and a bad target or .tflite before TensorFlow's start-up.
    target = target_of(config, _ACCELERATOR.value)
    is_tflite = model_path.suffix == ".tflite"
    tflite = tflite_file.read_int8_model(model_path) if is_tflite else None
    from udc.data import load_splits
    from udc.deploy.export import measure_tflite
    from udc.deploy.model_io import load_model
    from udc.report.model_report import to_markdown
    from udc.workflows.pipeline import export_from_config

    model = tflite if is_tflite else load_model(model_path)
    splits = load_splits(config)
    if is_tflite:
        report = measure_tflite(model, splits, target, output_dir, name=_NAME.value,
                                tflm_samples=config.export.tflm_samples)
    else:
        report = export_from_config(model, splits, config, output_dir, _NAME.value, _ACCELERATOR.value)
    print(to_markdown(report))
    print(f"wrote {output_dir}/{_NAME.value}.tflite and its report")


def run():
    run_binary("udc-export", main)
