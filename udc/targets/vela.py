"""Compile a .tflite with Vela in-process and read what it costs on the NPU (for `udc.targets.ethos_u`)."""

import contextlib
import csv
import dataclasses
import io
import re
import tempfile
from pathlib import Path

from ethosu.vela import vela as vela_main

from udc import tflite_file
from udc.errors import UdcError

VELA_CONFIG_FILE = "Arm/vela.ini"  # the system configs Vela ships
_NPU_OP = "ethos-u"  # the custom operator Vela puts in place of what it maps to the NPU


@dataclasses.dataclass(frozen=True)
class VelaResult:
    target: object  # the udc.targets.ethos_u.EthosU it was compiled for
    encoded_weight_bytes: int  # total_npu_encoded_weights
    original_weight_bytes: int
    flash_kib: float  # off-chip + on-chip flash used
    dram_kib: float
    sram_kib: float
    weights_area: str  # where Vela stores the weights (Off-chip Flash, Dram, ...)
    cycles: int
    inference_time_s: float
    npu_ops: int
    cpu_ops: int
    cpu_op_names: tuple
    optimised_model: bytes  # the _vela.tflite
    # With per_layer: per operator of the input file, in its order, {"op": name, "cycles": Vela's estimate}.
    operator_cycles: tuple = ()
    # With weight_formats: per operator of the input file, the weight format Vela chose ("Default",
    # "Default|Sparse2_4" where the Ethos-U85 runs its 2:4 sparse weights; None without weights).
    weight_formats: tuple = ()

    @property
    def npu_fraction(self) -> float:
        total = self.npu_ops + self.cpu_ops
        return self.npu_ops / total if total else 0.0

    def summary(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("optimised_model")
        d.pop("operator_cycles")
        d.pop("weight_formats")
        d["target"] = self.target.describe()
        d["cpu_op_names"] = list(self.cpu_op_names)
        d["npu_fraction"] = self.npu_fraction
        return d


def compile_model(data: bytes, target, name: str = "model", per_layer: bool = False,
                  weight_formats: bool = False) -> VelaResult:
    """Runs Vela on the model bytes for `target` (an EthosU) and parses its summary (and, with
    `per_layer`, its per-layer performance estimate: `operator_cycles`; with `weight_formats`, the
    weight format of each operator from Vela's debug database)."""
    tflite_file.check_tflite_bytes(data, name)
    with tempfile.TemporaryDirectory(prefix="udc-vela-") as tmp:
        source = Path(tmp) / f"{name}.tflite"
        source.write_bytes(data)
        out_dir = Path(tmp) / "out"
        log = io.StringIO()
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            try:
                status = vela_main.main([
                    str(source), "--output-dir", str(out_dir),
                    "--accelerator-config", target.accelerator,
                    "--config", VELA_CONFIG_FILE,
                    "--system-config", target.system_config,
                    "--memory-mode", target.memory_mode,
                ] + (["--verbose-performance"] if per_layer else []) + (["--enable-debug-db"] if weight_formats else []))
            except SystemExit as e:  # argparse errors
                status = e.code
            except Exception as e:  # Vela raises its own errors for unsupported models
                raise UdcError(f"Vela could not compile {name}: {e}") from e
        if status != 0:
            tail = " ".join(log.getvalue().strip().splitlines()[-3:])
            raise UdcError(f"Vela failed on {name} for {target.accelerator}: {tail}")
        summary_csv = next(out_dir.glob("*_summary_*.csv"))
        with open(summary_csv) as f:
            row = next(csv.DictReader(f))
        optimised = (out_dir / f"{name}_vela.tflite").read_bytes()
        operator_cycles = _operator_cycles(data, out_dir / f"{name}_per-layer.csv") if per_layer else ()
        formats = _weight_formats(data, (out_dir / f"{name}_debug.xml").read_text()) if weight_formats else ()
    ops = tflite_file.operator_names(tflite_file.parse(optimised))
    cpu_ops = tuple(op for op in ops if op != _NPU_OP)
    npu_ops = _count(log.getvalue(), "NPU operators")
    return VelaResult(
        target=target,
        encoded_weight_bytes=int(float(row["total_npu_encoded_weights"])),
        original_weight_bytes=int(float(row["total_original_weights"])),
        flash_kib=float(row["off_chip_flash_memory_used"]) + float(row["on_chip_flash_memory_used"]),
        dram_kib=float(row["dram_memory_used"]),
        sram_kib=float(row["sram_memory_used"]),
        weights_area=row["weights_storage_area"],
        cycles=int(float(row["cycles_total"])),
        inference_time_s=float(row["inference_time"]),
        npu_ops=npu_ops,
        cpu_ops=_count(log.getvalue(), "CPU operators"),
        cpu_op_names=cpu_ops,
        optimised_model=optimised,
        operator_cycles=operator_cycles,
        weight_formats=formats,
    )


def _operator_cycles(data: bytes, per_layer_csv: Path) -> tuple:
    """Vela's per-layer rows summed per operator of the input file.

    A row names the tensor it writes: an operator's output, or one Vela derives from it
    (a MEAN runs as a depthwise convolution writing `<output>_intermediate`, then a
    multiplication writing `<output>`), so each row goes to the operator whose output name
    is the longest prefix of the row's name.
    """
    model = tflite_file.parse(data)
    graph = model.subgraphs[0]
    outputs = [graph.tensors[op.outputs[0]].name.decode() for op in graph.operators]
    totals = [{"op": tflite_file.op_name(model, op), "cycles": 0} for op in graph.operators]
    with open(per_layer_csv) as f:
        for row in csv.DictReader(f):
            owners = [i for i, out in enumerate(outputs) if row["Name"].startswith(out)]
            if not owners:
                raise UdcError(f"Vela's per-layer estimate names '{row['Name']}', no operator's output")
            owner = max(owners, key=lambda i: len(outputs[i]))
            totals[owner]["cycles"] += int(float(row["Op Cycles"]))
    return tuple(totals)


def _debug_tables(xml: str) -> dict:
    """The CSV tables of Vela's debug database (`--enable-debug-db`): {table name: [row dicts]}."""
    return {m.group(1): list(csv.DictReader(io.StringIO(m.group(2).strip())))
            for m in re.finditer(r'<table name="([^"]+)">\s*<!\[CDATA\[(.*?)\]\]>', xml, re.S)}


def _weight_formats(data: bytes, xml: str) -> tuple:
    """Per operator of the input file, the weight format of Vela's scheduled operation(s) for it:
    `perf_debug` rows (weight_format) join `perf` by id, whose source_id is a `source` row, whose
    ext_key is the operator's index in the input file."""
    tables = _debug_tables(xml)
    source_index = {row["id"]: int(row["ext_key"]) for row in tables["source"]}
    source_of = {row["id"]: row["source_id"] for row in tables["perf"]}
    formats = [None] * len(tflite_file.parse(data).subgraphs[0].operators)
    for row in tables["perf_debug"]:
        index = source_index.get(source_of.get(row["id"]))
        if index is not None and row["weight_format"]:
            formats[index] = row["weight_format"]
    return tuple(formats)


def _count(log: str, label: str) -> int:
    match = re.search(rf"{label} = (\d+)", log)
    if not match:
        raise UdcError(f"Vela's summary has no '{label}' line; is ethos-u-vela 5.2 installed?")
    return int(match.group(1))
