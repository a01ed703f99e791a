"""Bad .tflite inputs and nonsense ensemble flags: exit status 1, one line, nothing written.

The bad files are made here from a tiny tf_keras model (8x8x1 in, 10 classes, like
digits): FLOAT = the converter's default (float32 throughout), DYNAMIC = optimizations
DEFAULT without a representative dataset (int8 weights, float activations), TRUNCATED =
the first half of a full-integer int8 file, EMPTY = 0 bytes, DIR = a directory.
<f> is the path of the bad file; every line starts with `udc-<binary>: error: `.

udc-export --config=configs/digits.py --model=<f> --output_dir=<out>
  float         <f> is a float model: its input 'serving_default_image:0' is FLOAT32; udc needs a
                full-integer int8 model (int8 input and output, int8 weights, int8 activations): convert the
                Keras model with udc-export --model=<the Keras model>, or use the TFLite converter with a
                representative dataset and inference_input_type=tf.int8, inference_output_type=tf.int8
  dynamic-range <f> is a dynamic-range model (int8 weights, float activations): its input ... is FLOAT32;
                udc needs a full-integer int8 model ... (as above)
  truncated     <f> is truncated or corrupt (its tables point outside the file); re-export it
  empty         <f> is empty (0 bytes); give a .tflite file written by the TFLite converter or udc-export
udc-inspect <f>
  float         <f> is a float model: ... (as for udc-export)
  truncated     <f> is truncated or corrupt (its tables point outside the file); re-export it
  directory     cannot read <f> (Is a directory); check the path
udc-ensemble --members <int8>,<f> --dataset digits --max_drop 1 --output_dir <out>
  float member  <f> is a float model: ... (as for udc-export)
  dynamic-range <f> is a dynamic-range model (int8 weights, float activations): ...
udc-ensemble --members a.tflite,b.tflite --dataset digits --max_drop 1 <flag> (checked before TensorFlow loads)
  --max_drop 1000 / -1 / nan   --max_drop is in accuracy points and must lie in [0, 100], got 1000; e.g.
                               --max_drop 0.5 allows half a point below the full ensemble
  --max_cost 0 / -5            --max_cost must be a positive average cost, got 0; give it in cycles
                               (--cost=vela_cycles) or ms (--cost=host_latency)
  --latency_repeats -3         --latency_repeats is the number of timed invocations per member and must be
                               at least 1, got -3
  --epochs 0                   --epochs is the number of epochs per trained member and must be at least 1, got 0
  --max_test -1                --max_test is the number of test images kept (0 = all) and must be at least 0, got -1
  --val_fraction 1.5           --val_fraction must lie strictly between 0 and 1, got 1.5; the thresholds are
                               calibrated on that share of the training set, e.g. --val_fraction 0.1
  --train_widths 0.5,-1        --train_widths must be positive width multipliers, got 0.5,-1; e.g.
                               --train_widths 0.25,0.5,1

In-process (Cascade, the library API):
  Cascade.predict on raw uint8 digits: InputMismatchError "inputs are uint8 in [0, 255] but the members
    expect float32 in [0, 1]; scale them as the training data was (x / 255)" (from a version 2
    descriptor, which records the calibration images, and from a version 1 descriptor, where the
    members' int8 input range stands in); images in [-1, 1]: "... scale them into [0, 1] as the
    training data was"; 0/1 uint8 images: "... convert them to float32"; NaN: "inputs contain NaN ...".
  Cascade(...) with a float member: NotInt8ModelError "<f> is a float model: ...".
"""

import json

import numpy as np
import pytest

from cli_helpers import DIGITS, assert_user_error, half_written, udc
from udc.compat import keras, tf

FULL_INTEGER_FIX = ("udc needs a full-integer int8 model", "udc-export --model=<the Keras model>",
                    "inference_input_type=tf.int8")
OUTPUTS = ("model.tflite", "model_vela.tflite", "report.json", "report.md", "cascade.json", "ensemble.json")


def _tiny_model(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.layers.Input((8, 8, 1), name="image"), keras.layers.Conv2D(4, 3, activation="relu"),
                             keras.layers.Flatten(), keras.layers.Dense(10)])


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits_splits):
    """Path of each kind of input, good ("int8", "int8_b") and bad."""
    from udc.deploy.convert import convert_to_int8

    folder = tmp_path_factory.mktemp("tflite")
    model = _tiny_model(0)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    contents = {"float": converter.convert()}
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    contents["dynamic"] = converter.convert()
    contents["int8"] = convert_to_int8(model, digits_splits.train.x[:32])
    contents["int8_b"] = convert_to_int8(_tiny_model(1), digits_splits.train.x[:32])
    contents["truncated"] = contents["int8"][: len(contents["int8"]) // 2]
    contents["empty"] = b""
    paths = {}
    for kind, data in contents.items():
        paths[kind] = folder / f"{kind}.tflite"
        paths[kind].write_bytes(data)
    paths["directory"] = folder / "directory.tflite"
    paths["directory"].mkdir()
    return paths


def _assert_nothing_written(out):
    assert half_written(out) == []
    assert not [name for name in OUTPUTS if (out / name).exists()]


FLOAT = ("is a float model", "its input 'serving_default_image:0' is FLOAT32") + FULL_INTEGER_FIX
DYNAMIC = ("is a dynamic-range model (int8 weights, float activations)",) + FULL_INTEGER_FIX
TRUNCATED = ("is truncated or corrupt", "re-export it")


@pytest.mark.parametrize("binary, kind, fragments", [
    pytest.param(binary, kind, fragments, id=f"{binary}-{kind}") for binary, kind, fragments in (
        ("export", "float", FLOAT),
        ("export", "dynamic", DYNAMIC),
        ("export", "truncated", TRUNCATED),
        ("export", "empty", ("is empty (0 bytes)", "give a .tflite file")),
        ("inspect", "float", FLOAT),
        ("inspect", "truncated", TRUNCATED),
        ("inspect", "directory", ("cannot read", "(Is a directory); check the path")),
        ("ensemble", "float", FLOAT),
        ("ensemble", "dynamic", DYNAMIC),
    )])
def test_bad_tflite_is_one_line_and_writes_nothing(binary, kind, fragments, files, tmp_path):
    out = tmp_path / "out"
    bad = files[kind]
    args = {
        "export": (f"--config={DIGITS}", f"--model={bad}", f"--output_dir={out}"),
        "inspect": (bad,),
        "ensemble": ("--members", f"{files['int8']},{bad}", "--accelerator", "ethos-u55-128", "--dataset", "digits",
                     "--max_drop", "1", "--output_dir", out),
    }[binary]
    result = udc(binary, *args)
    line = assert_user_error(result, f"udc-{binary}: error: ", str(bad), *fragments)
    assert line.count(str(bad)) == 1
    assert result.stdout == ""
    _assert_nothing_written(out)


@pytest.mark.parametrize("flag, fragments", [
    ("--max_drop=1000", ("--max_drop is in accuracy points and must lie in [0, 100], got 1000",)),
    ("--max_drop=-1", ("--max_drop is in accuracy points", "got -1")),
    ("--max_drop=nan", ("--max_drop is in accuracy points", "got nan")),
    ("--max_cost=0", ("--max_cost must be a positive average cost, got 0", "--cost=vela_cycles")),
    ("--max_cost=-5", ("--max_cost must be a positive average cost, got -5",)),
    ("--latency_repeats=-3", ("--latency_repeats is the number of timed invocations", "at least 1, got -3")),
    ("--epochs=0", ("--epochs is the number of epochs per trained member and must be at least 1, got 0",)),
    ("--max_test=-1", ("--max_test", "at least 0, got -1")),
    ("--val_fraction=1.5", ("--val_fraction must lie strictly between 0 and 1, got 1.5",)),
    ("--train_widths=0.5,-1", ("--train_widths must be positive width multipliers, got 0.5,-1",)),
    ("--max_members=-1", ("--max_members is the number of members chosen from the pool", "at least 0, got -1")),
    ("--max_members=9", ("a cascade of 9 members is more than the 8 the threshold sweep holds in memory",
                         "--max_members 8 or fewer")),
], ids=lambda v: v.lstrip("-") if isinstance(v, str) else "")
def test_nonsense_ensemble_numbers_are_one_line(flag, fragments, tmp_path):
    """Members a.tflite, b.tflite do not exist: the flags are checked first."""
    out = tmp_path / "out"
    name = flag.split("=")[0]
    goal = [] if name in ("--max_drop", "--max_cost") else ["--max_drop=1"]
    result = udc("ensemble", "--members", "a.tflite,b.tflite", "--dataset", "digits", *goal, flag,
                 "--output_dir", out)
    assert_user_error(result, *fragments)
    assert not out.exists()


# The library API: the Cascade checks its members and the images it is given.


@pytest.fixture(scope="module")
def members(files):
    from udc.ensemble import load_members

    return load_members([files["int8"], files["int8_b"]], latency_repeats=2)


@pytest.fixture(scope="module")
def descriptor(members, digits_splits, tmp_path_factory):
    from udc.ensemble import calibrate

    result = calibrate(members, digits_splits, cost_metric="host_latency", max_drop=100)
    return result.cascade.save(tmp_path_factory.mktemp("cascade") / "cascade.json")


RAW_UINT8 = "inputs are uint8 in [0, 255] but the members expect float32 in [0, 1]; " \
            "scale them as the training data was (x / 255)"


@pytest.mark.parametrize("version", [2, 1], ids=["recorded-range", "version-1-members-range"])
def test_cascade_refuses_images_on_another_scale(version, descriptor, digits_splits, tmp_path):
    from udc.data import load_raw
    from udc.ensemble import Cascade
    from udc.ensemble.inputs import InputMismatchError

    d = json.loads(descriptor.read_text())
    assert d["version"] == 3 and d["input"] == {"dtype": "float32", "range": [0.0, 1.0]}
    if version == 1:
        d["version"] = 1
        del d["input"]
    path = descriptor.parent / f"v{version}.json"
    path.write_text(json.dumps(d))
    cascade = Cascade.load(path)
    x = digits_splits.test.x
    assert cascade.predict(x).shape == (len(x),) and cascade.predict(x.astype(np.float64)).shape == (len(x),)
    raw = load_raw("digits").x_test
    assert raw.dtype == np.uint8 and raw.max() > 200
    with pytest.raises(InputMismatchError) as error:
        cascade.predict(raw)
    assert str(error.value) == RAW_UINT8
    with pytest.raises(InputMismatchError, match=r"inputs are float32 in \[-1, 1\] .* scale them into \[0, 1\]"):
        cascade.predict(x * 2 - 1)
    with pytest.raises(InputMismatchError, match="convert them to float32"):
        cascade.predict((x > 0.5).astype(np.uint8))
    nan = x.copy()
    nan[0, 0, 0, 0] = np.nan
    with pytest.raises(InputMismatchError, match="NaN"):
        cascade.predict_proba(nan)


def test_cascade_refuses_a_float_member_and_unknown_versions(members, files, descriptor):
    import dataclasses

    from udc.ensemble import Cascade
    from udc.ensemble.descriptor import DescriptorError
    from udc.errors import NotInt8ModelError

    data = files["float"].read_bytes()
    float_member = dataclasses.replace(members[1], path=str(files["float"]), data=data)
    with pytest.raises(NotInt8ModelError, match="float.tflite is a float model: its input"):
        Cascade([members[0], float_member], [0.5], "max_prob")
    d = json.loads(descriptor.read_text())
    d["version"] = 4
    path = descriptor.parent / "v4.json"
    path.write_text(json.dumps(d))
    with pytest.raises(DescriptorError, match="reads versions 1, 2, 3"):
        Cascade.load(path)


def test_combination_weights_that_do_not_fit_the_members_are_refused(descriptor):
    from udc.ensemble import Cascade
    from udc.ensemble.descriptor import DescriptorError

    d = json.loads(descriptor.read_text())
    assert d["combination"]["kind"] == "log_linear" and len(d["combination"]["stage_weights"]) == len(d["members"])
    for weights, message in ((d["combination"]["stage_weights"][:-1], "stages of combination weights for"),
                             ([[1.0]] * len(d["members"]), "stage 2 needs 2 finite non-negative"),
                             ([[-1.0]] + d["combination"]["stage_weights"][1:], "stage 1 needs 1 finite")):
        broken = dict(d, combination={"kind": "log_linear", "stage_weights": weights})
        path = descriptor.parent / "broken.json"
        path.write_text(json.dumps(broken))
        with pytest.raises(DescriptorError, match=message) as error:
            Cascade.load(path)
        assert "\n" not in str(error.value) and "recalibrate the cascade with udc-ensemble" in str(error.value)
    path.write_text(json.dumps(dict(d, combination={"kind": "median"})))
    with pytest.raises(DescriptorError, match="neither average nor log_linear"):
        Cascade.load(path)
