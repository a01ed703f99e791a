"""Export a trained tf_keras model (float or QAT) as an int8 .tflite and measure it.

The path: int8 conversion (batch 1) -> metadata entry `udc` in the flatbuffer ->
accuracy of the .tflite itself on the test split -> Vela for the target (keeps the
`_vela.tflite`) -> TFLite Micro run and arena size -> report.json, report.md and
definition.yaml beside the model. Every file is written atomically.
"""

from pathlib import Path

import numpy as np

from udc import __version__, tflite_file
from udc.deploy import tflm
from udc.deploy.convert import convert_to_int8, saturated_biases
from udc.deploy.interpreter import TfliteClassifier
from udc.fileio import ensure_writable_dir, write_bytes_atomic
from udc.report.inspect import inspect_model
from udc.report.model_report import build_report, write_report
from udc.training.backbone import keras_accuracy


def export_model(model, splits, target, output_dir, *, name="model", config=None, arch_spec=None,
                 num_calibration=256, tflm_samples=16, log=print) -> dict:
    """Converts `model` to int8 and measures it (see measure_tflite); returns the report."""
    log(f"converting to int8 with {num_calibration} calibration images ...")
    data = convert_to_int8(model, splits.train.x[:num_calibration])
    metadata = {"udc_version": __version__, "config": config.to_dict() if config is not None else None,
                "arch_spec": arch_spec.to_json() if arch_spec is not None else None, "dataset": splits.name}
    data = tflite_file.with_metadata(data, metadata)
    log("measuring accuracy of the Keras model on the test split ...")
    return measure_tflite(data, splits, target, output_dir, name=name, tflm_samples=tflm_samples,
                          keras_test_accuracy=keras_accuracy(model, splits.test), log=log)


def measure_tflite(data, splits, target, output_dir, *, name="model", tflm_samples=16,
                   keras_test_accuracy=None, log=print) -> dict:
    """Measures an int8 .tflite; writes `name.tflite`, `name_vela.tflite` and the report.

    Anything but a full-integer int8 model is refused before any output is written.
    """
    parsed = tflite_file.check_int8(data, f"{name}.tflite")
    output_dir = ensure_writable_dir(output_dir)
    log("measuring accuracy of the .tflite on the test split ...")
    classifier = TfliteClassifier(data, name)
    int8_accuracy = classifier.accuracy(splits.test.x, splits.test.y)

    log(f"compiling for {target.name} ...")
    vela = target.compile(data, name)

    log(f"running TFLite Micro on {tflm_samples} test images ...")
    sample = splits.test.x[:tflm_samples]
    tflm_outputs, arena = tflm.run(data, classifier.quantize_input(sample))
    litert_outputs = classifier.raw_outputs(sample)
    # The two runtimes' kernels may round differently by a code; the class must agree.
    agreement = float(np.mean(tflm_outputs.argmax(axis=1) == litert_outputs.argmax(axis=1)))
    max_code_difference = int(np.abs(tflm_outputs.astype(int) - litert_outputs.astype(int)).max())

    report = build_report(
        name=name, tflite=data, keras_accuracy=keras_test_accuracy, int8_accuracy=int8_accuracy,
        vela=vela, tflm_arena_bytes=arena, tflm_agreement=agreement,
        tflm_max_code_difference=max_code_difference,
        saturated_biases=saturated_biases(data),
        operators=tflite_file.operator_names(parsed),
        weight_stats=inspect_model(data), dataset=splits.name, test_examples=len(splits.test),
    )
    write_bytes_atomic(Path(output_dir) / f"{name}.tflite", data)
    write_bytes_atomic(Path(output_dir) / f"{name}_vela.tflite", vela.optimised_model)
    write_report(report, output_dir)
    return report
