"""udc-inspect MODEL.tflite: per weight tensor, what is stored and its exact codec bytes."""

import dataclasses
import json

from absl import flags

from udc.cli.common import fail, run_binary

_JSON = flags.DEFINE_bool("json", False, "Print JSON instead of a table.")
_ACCELERATOR = flags.DEFINE_string(
    "accelerator", None, "An Ethos-U configuration: also show each layer's bytes in its weight encoding "
    "(before Vela's own padding and stripes), the weight format Vela chooses (2:4 sparse on the U85) and "
    "each layer's cycles.")


def main(argv):
    if len(argv) != 2:
        fail("udc-inspect", "give exactly one .tflite file: udc-inspect MODEL.tflite")
    from udc import tflite_file
    from udc.targets import get_target

    target = get_target(_ACCELERATOR.value) if _ACCELERATOR.value else None
    data = tflite_file.read_bytes(argv[1])
    tflite_file.check_int8(data, argv[1])  # a bad file is refused before TensorFlow's start-up
    from udc.report.inspect import format_table, inspect_model

    stats = inspect_model(data, target, source=argv[1])
    if _JSON.value:
        print(json.dumps([dataclasses.asdict(s) for s in stats], indent=2))
    else:
        print(format_table(stats))


def run():
    run_binary("udc-inspect", main)
