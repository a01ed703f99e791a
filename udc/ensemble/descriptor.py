"""The deployment descriptor of a calibrated cascade, and the `Cascade` runtime.

The descriptor is a small JSON file: member order, files (relative to the
descriptor), their sha256, thresholds, exit rule, how each stage combines its members
(version 3: "average" or a log-linear pool with its weights, `udc.ensemble.combination`;
versions 1 and 2 averaged), the quantization parameters of each member's input and
output, and the dtype and value range of the images the thresholds were calibrated on
(version 2 on; a version 1 descriptor has none, and the range the members' int8 input
can represent stands in). `Cascade.load` refuses a
descriptor whose files are missing or changed, and runs the members lazily: a member
only sees the inputs that the cheaper ones did not answer confidently. The members run in
LiteRT or, with `runtime="tflm"`, in TensorFlow Lite Micro, the runtime of the device.
"""

import json
import os
from pathlib import Path

import numpy as np

from udc import tflite_file
from udc.deploy.interpreter import TfliteClassifier
from udc.ensemble import cascade as logic
from udc.ensemble.combination import check_stage_weights
from udc.ensemble.inputs import InputSpec
from udc.ensemble.members import (RUNTIMES, Member, check_compatible, input_interval, output_is_softmax,
                                  sha256_bytes)
from udc.errors import UdcError
from udc.fileio import write_json_atomic

FORMAT = "udc-cascade"
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)


class DescriptorError(UdcError):
    pass


def _quantization(classifier: TfliteClassifier) -> dict:
    return {
        "input_dtype": np.dtype(classifier.input_details["dtype"]).name,
        "input_quantization": list(classifier.input_quantization),
        "output_dtype": np.dtype(classifier.output_details["dtype"]).name,
        "output_quantization": list(classifier.output_quantization),
    }


def _same(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and bool(np.allclose(a, b))
    return a == b


def _members_input_spec(members) -> InputSpec:
    """Float images in the interval the members' int8 input represents (it clips the rest)."""
    return InputSpec("float32", *input_interval(members[0].classifier))


def _input_spec(d: dict, path, members) -> InputSpec:
    """The descriptor's input entry (version 2), or what the members represent (version 1)."""
    if d["version"] == 1:
        return _members_input_spec(members)
    entry = d["input"]
    try:
        low, high = (float(v) for v in entry["range"])
        spec = InputSpec(np.dtype(entry["dtype"]).name, low, high)
    except (KeyError, TypeError, ValueError):
        raise DescriptorError(f"the 'input' entry of {path} is not {{\"dtype\": ..., \"range\": [low, high]}} "
                              f"but {entry!r}; recalibrate the cascade with udc-ensemble") from None
    if not (np.isfinite(low) and np.isfinite(high) and low <= high):
        raise DescriptorError(f"the input range [{low}, {high}] in {path} is not an interval; "
                              "recalibrate the cascade with udc-ensemble")
    return spec


def _stage_weights(d: dict, path, num_members: int):
    """The descriptor's log-linear stage weights, or None where its stages average (version 1 and 2,
    or "kind": "average"); DescriptorError for weights that do not fit the members."""
    if d["version"] < 3:
        return None
    entry = d["combination"]
    kind = entry.get("kind") if isinstance(entry, dict) else None
    if kind == "average":
        return None
    if kind != "log_linear" or "stage_weights" not in entry:
        raise DescriptorError(f"the 'combination' entry of {path} is neither average nor log_linear with its "
                              f"stage_weights but {entry!r}; recalibrate the cascade with udc-ensemble")
    try:
        return check_stage_weights(entry["stage_weights"], num_members)
    except UdcError as e:
        raise DescriptorError(f"{path}: {e}") from None


class Cascade:
    """Members (cheapest first) with exit thresholds: classifies float images.

    `input_spec` is what the images must look like (default: float images in the range
    the members' int8 input represents); calibration records the calibration images'.
    `stage_weights` (per stage, the weights of its members' log-linear pool) combine the
    members; without them each stage averages its members. `runtime` runs the members in LiteRT
    ("litert") or in TensorFlow Lite Micro ("tflm", one image at a time, as a device does).
    """

    def __init__(self, members: list[Member], thresholds, rule: str, metadata: dict | None = None,
                 input_spec: InputSpec | None = None, stage_weights=None, runtime: str = "litert"):
        check_compatible(members)
        if runtime not in RUNTIMES:
            raise UdcError(f"unknown runtime '{runtime}'; choose one of: {', '.join(RUNTIMES)}")
        self.runtime = runtime
        self.members = list(members)
        self.rule = logic.check_rule(rule)
        self.thresholds = [float(t) for t in logic.check_thresholds(thresholds, len(members))]
        self.metadata = dict(metadata or {})
        self.input_spec = input_spec or _members_input_spec(self.members)
        self.stage_weights = None if stage_weights is None else check_stage_weights(stage_weights, len(members))

    @property
    def input_shape(self) -> tuple:
        return self.members[0].classifier.input_shape

    @property
    def num_classes(self) -> int:
        return self.members[0].classifier.num_classes

    def predict_with_exits(self, images: np.ndarray):
        """(probabilities, exit stage) per image; later members only run on undecided images.

        Images of another dtype or value range than `input_spec` are refused: the members
        would clip them silently.
        """
        images = np.asarray(images)
        self.input_spec.check(images)
        images = images.astype(np.float32)
        n = len(images)
        seen = []  # each member's probabilities, filled for the images it ran on
        probs = np.zeros((n, self.num_classes))
        exits = np.full(n, len(self.members) - 1)
        alive = np.arange(n)
        for k, member in enumerate(self.members):
            if len(alive) == 0:
                break
            seen.append(np.zeros((n, self.num_classes)))
            seen[k][alive] = member.probabilities(images[alive], self.runtime)
            combined = logic.combine([p[alive] for p in seen],
                                     None if self.stage_weights is None else self.stage_weights[k])
            if k < len(self.members) - 1:
                leave = logic.confidence(combined, self.rule) >= self.thresholds[k]
            else:
                leave = np.ones(len(alive), dtype=bool)
            probs[alive[leave]] = combined[leave]
            exits[alive[leave]] = k
            alive = alive[~leave]
        return probs, exits

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return self.predict_with_exits(images)[0]

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.predict_proba(images).argmax(axis=1)

    def to_dict(self, directory) -> dict:
        directory = Path(directory).resolve()
        entries = []
        for m in self.members:
            path = Path(m.path).resolve()
            try:
                file = os.path.relpath(path, directory)
            except ValueError:  # another drive
                file = str(path)
            entries.append({
                "name": m.name, "file": file, "sha256": m.sha256, "softmax_output": m.softmax_output,
                **_quantization(m.classifier),
                "vela_cycles": m.vela_cycles, "host_latency_ms": m.host_latency_ms,
            })
        return {
            "format": FORMAT, "version": VERSION, "rule": self.rule, "thresholds": self.thresholds,
            "combination": ({"kind": "average"} if self.stage_weights is None else
                            {"kind": "log_linear", "stage_weights": [w.tolist() for w in self.stage_weights]}),
            "input_shape": list(self.input_shape), "input": self.input_spec.as_dict(),
            "num_classes": self.num_classes,
            "members": entries, **({"metadata": self.metadata} if self.metadata else {}),
        }

    def save(self, path) -> Path:
        path = Path(path)
        return write_json_atomic(path, self.to_dict(path.parent))

    @classmethod
    def load(cls, path, runtime: str = "litert") -> "Cascade":
        """The cascade of a descriptor, its members run by `runtime` (see the class)."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except OSError as e:
            raise DescriptorError(f"cannot read cascade descriptor {path} ({e.strerror})") from None
        except json.JSONDecodeError as e:
            raise DescriptorError(f"{path} is not valid JSON ({e}); give a descriptor written by udc-ensemble") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise DescriptorError(f"{path} is not a udc cascade descriptor (no \"format\": \"{FORMAT}\")")
        if d.get("version") not in READABLE_VERSIONS:
            raise DescriptorError(f"{path} has descriptor version {d.get('version')}; this udc reads versions "
                                  f"{', '.join(map(str, READABLE_VERSIONS))}: recalibrate the cascade with udc-ensemble")
        for key in ("rule", "thresholds", "members") + (("input",) if d["version"] >= 2 else ()) + (
                ("combination",) if d["version"] >= 3 else ()):
            if key not in d:
                raise DescriptorError(f"{path} has no '{key}' entry; recalibrate the cascade with udc-ensemble")
        members = []
        for entry in d["members"]:
            if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
                raise DescriptorError(f"a member entry of {path} names no file: {entry!r}; "
                                      "recalibrate the cascade with udc-ensemble")
            file = Path(entry["file"])
            file = file if file.is_absolute() else path.parent / file
            if not file.is_file():
                raise DescriptorError(f"member file {file} of {path} is missing; restore it or recalibrate the cascade")
            data = file.read_bytes()
            if sha256_bytes(data) != entry.get("sha256"):
                raise DescriptorError(
                    f"member file {file} has changed since {path} was written (sha256 mismatch); "
                    "thresholds were calibrated for the old file: recalibrate with udc-ensemble"
                )
            tflite_file.check_int8(data, str(file))
            classifier = TfliteClassifier(data, name=str(file))
            stored = {k: entry.get(k) for k in ("input_dtype", "input_quantization", "output_dtype", "output_quantization")}
            actual = _quantization(classifier)
            if not all(_same(stored[k], actual[k]) for k in actual):
                raise DescriptorError(
                    f"quantization of {file} does not match {path} (file: {actual}, descriptor: {stored}); "
                    "recalibrate the cascade with udc-ensemble"
                )
            members.append(Member(path=str(file), data=data, classifier=classifier,
                                  softmax_output=output_is_softmax(data),
                                  vela_cycles=entry.get("vela_cycles"), host_latency_ms=entry.get("host_latency_ms"),
                                  name=entry.get("name", "")))
        if not members:
            raise DescriptorError(f"{path} lists no members")
        if "input_shape" in d and list(members[0].classifier.input_shape) != list(d["input_shape"]):
            raise DescriptorError(f"the members take inputs of shape {members[0].classifier.input_shape}, "
                                  f"{path} says {tuple(d['input_shape'])}")
        return cls(members, d["thresholds"], d["rule"], d.get("metadata"), _input_spec(d, path, members),
                   _stage_weights(d, path, len(members)), runtime)
