"""Members of a cascade: exported int8 .tflite files, loaded, checked and costed.

Members come from any list of .tflite classifiers (`load_members`); `udc.workflows.ensemble_members`
makes such lists with udc (searches at several budgets, or a backbone at several widths).
"""

import dataclasses
import hashlib
import time
from pathlib import Path

import numpy as np

from udc import tflite_file
from udc.deploy.interpreter import TfliteClassifier
from udc.deploy.tflm import MicroInterpreter
from udc.errors import UdcError

# Where a member runs: LiteRT on the host (batched), or TensorFlow Lite Micro's kernels (one input at a time, the
# runtime of a microcontroller), to check on the host what a device will answer.
RUNTIMES = ("litert", "tflm")


class IncompatibleMembersError(UdcError):
    pass


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def output_is_softmax(data: bytes) -> bool:
    """True when the model's last operator is SOFTMAX (its outputs are probabilities already)."""
    ops = tflite_file.operator_names(tflite_file.parse(data))
    return bool(ops) and ops[-1] == "SOFTMAX"


@dataclasses.dataclass
class Member:
    """One .tflite classifier of a cascade, with what it costs."""

    path: str
    data: bytes
    classifier: TfliteClassifier
    softmax_output: bool
    vela_cycles: int | None = None
    host_latency_ms: float | None = None
    # What storing it costs on the target (Vela's figures of the same compile as the cycles): a device stores
    # every member of a cascade, however few inputs reach it.
    encoded_bytes: int | None = None
    flash_kib: float | None = None
    _micro: MicroInterpreter | None = dataclasses.field(default=None, repr=False, compare=False)
    name: str = ""  # default: the file's stem

    def __post_init__(self):
        self.name = self.name or Path(self.path).stem

    @property
    def sha256(self) -> str:
        return sha256_bytes(self.data)

    def probabilities(self, images: np.ndarray, runtime: str = "litert") -> np.ndarray:
        """Dequantized softmax outputs, one row per image (float64, rows sum to 1), computed by `runtime`
        (`RUNTIMES`: LiteRT on the host, or TensorFlow Lite Micro's kernels, one image at a time as on a device)."""
        logits = self._outputs(images, runtime).astype(np.float64)
        if self.softmax_output:
            p = np.clip(logits, 0.0, None)
            total = p.sum(axis=1, keepdims=True)
            return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])
        z = logits
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def _outputs(self, images, runtime):
        if runtime not in RUNTIMES:
            raise UdcError(f"unknown runtime '{runtime}'; choose one of: {', '.join(RUNTIMES)}")
        if runtime == "litert":
            return self.classifier.logits(images)
        if self._micro is None:
            self._micro = MicroInterpreter(self.data, name=self.path)
        return self.classifier.dequantize_output(self._micro.outputs(self.classifier.quantize_input(images)))

    def cost_or_none(self, metric: str):
        if metric not in ("vela_cycles", "host_latency"):
            raise UdcError(f"unknown cost '{metric}'; choose vela_cycles or host_latency")
        return {"vela_cycles": self.vela_cycles, "host_latency": self.host_latency_ms}[metric]

    def cost(self, metric: str) -> float:
        value = self.cost_or_none(metric)
        if value is None:
            raise UdcError(f"member {self.path} has no measured {metric}")
        return float(value)


def input_interval(classifier: TfliteClassifier) -> tuple:
    """The float interval an int8 input can represent (inputs outside it are clipped)."""
    scale, zero_point = classifier.input_quantization
    info = np.iinfo(classifier.input_details["dtype"])
    return ((info.min - zero_point) * scale, (info.max - zero_point) * scale)


def check_compatible(members: list[Member]) -> None:
    """Raises IncompatibleMembersError unless all members are full-integer int8 models that take the
    same inputs and give the same classes."""
    if len(members) < 2:
        raise IncompatibleMembersError(
            f"a cascade needs at least 2 members, got {len(members)}; list them in --members a.tflite,b.tflite"
        )
    for m in members:
        tflite_file.check_int8(m.data, m.path)
    first = members[0]
    for m in members:
        c = m.classifier
        if c.input_shape != first.classifier.input_shape:
            raise IncompatibleMembersError(
                f"members have different input shapes: {first.path} takes {first.classifier.input_shape}, "
                f"{m.path} takes {c.input_shape}; use members trained on the same inputs"
            )
        if c.num_classes != first.classifier.num_classes:
            raise IncompatibleMembersError(
                f"members have different class counts: {first.path} has {first.classifier.num_classes}, "
                f"{m.path} has {c.num_classes}; use members trained on the same classes"
            )
        for kind, quant in (("input", c.input_quantization), ("output", c.output_quantization)):
            if not quant[0] > 0:
                raise IncompatibleMembersError(
                    f"{m.path} has an int8 {kind} without quantization parameters (scale {quant[0]}); "
                    "its outputs cannot be dequantized and compared: re-export it with full-integer quantization"
                )
    intervals = [(m, input_interval(m.classifier)) for m in members]
    widths = [hi - lo for _, (lo, hi) in intervals]
    (m_lo, i_lo), (m_hi, i_hi) = intervals[int(np.argmin(widths))], intervals[int(np.argmax(widths))]
    if max(widths) > 4 * min(widths):
        raise IncompatibleMembersError(
            f"members expect inputs on different scales: {m_lo.path} covers "
            f"[{i_lo[0]:.3g}, {i_lo[1]:.3g}], {m_hi.path} covers [{i_hi[0]:.3g}, {i_hi[1]:.3g}]; "
            "their quantized inputs cannot be compared (use members exported from the same preprocessing)"
        )


def check_held_out(members: list[Member], dataset: str, seed: int, val_fraction: float) -> None:
    """IncompatibleMembersError for a member udc trained on another split of the data than the one the
    cascade is calibrated on (its .tflite metadata names the dataset, split seed and validation share): its
    training images may include the validation images the thresholds and weights are chosen on, which makes
    it look better there than it is. The same seed and share hold out the same validation images whatever
    `max_train` cut (`udc.data.splits.make_splits`); a .tflite without udc's metadata is not checked."""
    for m in members:
        config = (tflite_file.read_metadata(m.data) or {}).get("config") or {}
        trained = {key: config.get(key) for key in ("dataset", "seed", "val_fraction")}
        if config.get("split_seed") is not None:  # runs of another `seed` on the same split
            trained["seed"] = config["split_seed"]
        if None in trained.values():
            continue
        if (trained["dataset"], int(trained["seed"]), float(trained["val_fraction"])) != (dataset, int(seed),
                                                                                           float(val_fraction)):
            raise IncompatibleMembersError(
                f"member {m.name} was trained on {trained['dataset']} with split seed {trained['seed']} and "
                f"val_fraction {trained['val_fraction']:g}, the cascade is calibrated on {dataset} with seed {seed} "
                f"and val_fraction {val_fraction:g}, whose validation images it may have trained on; calibrate on "
                "the members' split (--seed, --val_fraction, or the config they were searched with) or leave it out")


def measure_host_latency_ms(data: bytes, input_shape, repeats: int = 50, warmup: int = 5) -> float:
    """Median time (ms) of one batch-1 invocation on this host, with one interpreter thread."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data, num_threads=1)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], (1,) + tuple(input_shape))
    interpreter.allocate_tensors()
    x = np.zeros((1,) + tuple(input_shape), dtype=detail["dtype"])
    interpreter.set_tensor(detail["index"], x)
    for _ in range(warmup):
        interpreter.invoke()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def distinct_names(paths) -> list[str]:
    """Each file's stem, with as many parent folders as it takes to tell the files apart
    (searched members are all model.tflite: udc_6kb/model, udc_12kb/model)."""
    stems = [Path(p).resolve().with_suffix("").parts for p in paths]
    for depth in range(1, max(len(s) for s in stems) + 1):
        names = ["/".join(s[-depth:]) for s in stems]
        if len(set(names)) == len(names):
            return names
    return names


def load_members(paths, target=None, measure_latency: bool = True, latency_repeats: int = 50) -> list[Member]:
    """Reads the .tflite files, checks they can be combined and measures their costs.

    `target` (a udc.targets.Target) adds its cycles, encoded weight bytes and flash; `measure_latency` adds host
    latency.
    """
    paths = [str(p) for p in paths]
    if len(set(paths)) != len(paths):
        raise IncompatibleMembersError("the same member file is listed twice in --members")
    members = []
    for path, name in zip(paths, distinct_names(paths)):
        data = tflite_file.read_int8_model(path)
        members.append(Member(path=path, data=data, classifier=TfliteClassifier(data, name=path),
                              softmax_output=output_is_softmax(data), name=name))
    check_compatible(members)
    for m in members:
        if target is not None:
            compiled = target.compile(m.data, name=Path(m.path).stem)
            m.vela_cycles, m.encoded_bytes, m.flash_kib = compiled.cycles, compiled.encoded_weight_bytes, compiled.flash_kib
        if measure_latency:
            m.host_latency_ms = measure_host_latency_ms(m.data, m.classifier.input_shape, latency_repeats)
    return members
