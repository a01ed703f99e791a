"""Arm Ethos-U55, U65 and U85: every accelerator configuration Vela accepts.

Defaults are microcontroller systems whose second AXI port is flash, with memory mode
Shared_Sram for every family: weights then live in read-only flash, so Vela's
`off_chip_flash_memory_used` is the model's flash footprint. Any system config and
memory mode of Vela's Arm/vela.ini can be chosen instead (DRAM-backed ones report
`dram_kib`).

Channel alignment (`channel_alignment`), measured: the NPU computes output channels (and reads
input channels) in blocks of its array, so a width just past a multiple of the block costs a
whole extra pass. `tools/channel_staircase.py` compiled one layer alone at every channel count
from 1 to 72 on every configuration (benchmarks/hardware/channel_staircase.md,
`udc.targets.staircase`): the block is 8 on Ethos-U55 and U65-256 (4 for U55-32's outputs, 8 for
its inputs), 16 on U65-512 (two cores, each every second output channel) and on U85-512 and up,
and 16 for depthwise layers on every U85. A kind's alignment fills the blocks of the layer that
produces a width and of the convolution that reads it (`alignment_by_kind`). The search's width
options follow the conv alignment. Vela also encodes weights in bricks of 8 output channels
(`ofm_ublock.depth`), so these widths fill every brick as well.

Weight encoding (`encoded_weight_bytes`): Vela's API (`ethosu.vela.api.npu_encode_weights`)
encodes a layer in the brick order of U55 and U65 configurations (`weight_encoder_api`), with
Vela's traversal rule, an OFM block depth of 16 and one stream per core (`cores`; U65-512 has
two). The API has no U85: an Ethos-U85 layer is compiled by Vela itself, alone in a small model
(`udc.targets.layer_model`), which came within 0.6 % of Vela's count of whole networks where
the flat stream of the same codec had been 5.5-8.8 % low.
"""

import configparser
import dataclasses
from pathlib import Path

import ethosu.vela
import numpy as np
from ethosu.vela.architecture_features import Accelerator

from udc.targets import vela
from udc.targets.layer_model import layer_model
from udc.targets.base import Target, register_target

ACCELERATORS = tuple(Accelerator.member_list())

_DEFAULT_SYSTEM_CONFIG = {
    "ethos-u55": "Ethos_U55_High_End_Embedded",
    "ethos-u65": "Ethos_U65_Embedded",
    "ethos-u85": "Ethos_U85_SYS_Flash_High",
}
DEFAULT_MEMORY_MODE = "Shared_Sram"
# (conv, depthwise, dense) width alignment per configuration, from benchmarks/hardware/channel_staircase.md;
# U85-2048's dense outputs showed no staircase up to 72 channels.
_ALIGNMENT = {
    "ethos-u55-32": (8, 8, 4), "ethos-u55-64": (8, 8, 8), "ethos-u55-128": (8, 8, 8), "ethos-u55-256": (8, 8, 8),
    "ethos-u65-256": (8, 8, 8), "ethos-u65-512": (16, 8, 16),
    "ethos-u85-128": (8, 16, 8), "ethos-u85-256": (8, 16, 8), "ethos-u85-512": (16, 16, 16),
    "ethos-u85-1024": (16, 16, 32), "ethos-u85-2048": (16, 16, 1),
}
_KINDS = ("conv", "depthwise", "dense")
_CORES = {"ethos-u65-512": 2}
_ENCODER_FAMILIES = ("ethos-u55", "ethos-u65")
VELA_OFM_BLOCK_DEPTH = 16
DEPTH_FIRST, PART_KERNEL_FIRST = 0, 1


def vela_traversal(kind: str, input_depth: int, kernel_area: int) -> int:
    """Vela's weight traversal for a layer (its rule in weight_compressor): part-kernel-first
    for convolutions whose input depth fills 32-deep blocks worse than 4-tap kernel groups."""
    if kind != "conv":
        return DEPTH_FIRST
    depth_use = input_depth / _round_up(input_depth, 32)
    part_use = (input_depth / _round_up(input_depth, 8)) * (kernel_area / _round_up(kernel_area, 4))
    return PART_KERNEL_FIRST if part_use >= depth_use or input_depth <= 8 else DEPTH_FIRST


def _round_up(n, m):
    return -(-n // m) * m


@dataclasses.dataclass(frozen=True)
class EthosU(Target):
    """An Ethos-U accelerator with the Vela system configuration and memory mode it is compiled for."""

    accelerator: str
    system_config: str
    memory_mode: str

    @property
    def name(self) -> str:
        return self.accelerator

    @property
    def family(self) -> str:
        return self.accelerator.rsplit("-", 1)[0]

    @property
    def macs_per_cycle(self) -> int:
        return int(self.accelerator.rsplit("-", 1)[1])

    @property
    def cores(self) -> int:
        return _CORES.get(self.accelerator, 1)

    @property
    def weight_encoder_api(self) -> str | None:
        """The name of this configuration in Vela's weight-encoding API (None: the API has none)."""
        if self.family not in _ENCODER_FAMILIES:
            return None
        return "Ethos_" + self.accelerator[len("ethos-"):].upper().replace("-", "_")

    def channel_alignment(self, kind: str) -> int:
        return _ALIGNMENT[self.accelerator][_KINDS.index(kind)]

    def unsupported(self, kind: str, dimension: str, option) -> str | None:
        # The weight patterns of the search ("dense", "N:M"): Vela 5.2 has a sparse weight format for
        # 2:4 only, on the Ethos-U85 only, and not for depthwise layers (see `two_four_problems`).
        if dimension != "pattern" or option == "dense":
            return None
        if self.family != "ethos-u85":
            return "only the Ethos-U85 runs N:M-sparse weights faster (Vela 5.2), the U55 and U65 run them dense"
        if option != "2:4":
            return "Vela 5.2's sparse weight format is 2:4"
        if kind == "depthwise":
            return "Vela runs depthwise weights dense only"
        return None

    def weight_traversals(self, kind: str) -> tuple:
        # Vela picks a convolution's traversal from its input depth (a 24-channel input is traversed
        # part-kernel-first and pads 3x3 kernels to 12 taps, a 32-channel one not).
        if kind == "conv" and self.weight_encoder_api:
            return (DEPTH_FIRST, PART_KERNEL_FIRST)
        return (None,)

    def weight_traversal(self, kind: str, input_depth: int, kernel_area: int) -> int:
        return vela_traversal(kind, input_depth, kernel_area) if self.weight_encoder_api else DEPTH_FIRST

    def encoded_weight_bytes(self, codes, kind: str, traversal=None) -> int:
        if not self.weight_encoder_api:  # Vela picks the traversal itself
            return self.compile(layer_model(codes, kind), "layer").encoded_weight_bytes
        from ethosu.vela.api import NpuAccelerator, NpuBlockTraversal, npu_encode_weights

        if kind == "dense":
            ohwi = codes[:, None, None, :]
        elif kind == "depthwise":
            ohwi = np.transpose(codes, (3, 1, 2, 0))  # 1HWC -> C HW 1 as Vela holds it
        else:
            ohwi = codes
        ohwi = ohwi.astype(np.int16)
        if traversal is None:
            traversal = vela_traversal(kind, ohwi.shape[3], ohwi.shape[1] * ohwi.shape[2])
        traversal = (NpuBlockTraversal.DEPTH_FIRST, NpuBlockTraversal.PART_KERNEL_FIRST)[traversal]
        # Multi-core NPUs (U65-512) take every n-th output channel per core, one stream each.
        total = 0
        for core in range(min(self.cores, ohwi.shape[0])):
            part = np.ascontiguousarray(ohwi[core::self.cores])
            block_depth = max(1, (VELA_OFM_BLOCK_DEPTH + self.cores - 1 - core) // self.cores)
            total += len(npu_encode_weights(
                getattr(NpuAccelerator, self.weight_encoder_api), part, (1, 1), 8,
                min(block_depth, part.shape[0]), kind == "depthwise", traversal,
            ))
        return total

    @property
    def clock_hz(self) -> float:
        # The system config's core_clock in the config file Vela ships (e.g. 500 MHz for
        # Ethos_U55_High_End_Embedded), the clock Vela's inference_time divides by.
        parser = configparser.ConfigParser()
        parser.read(Path(ethosu.vela.__file__).parents[1] / "config_files" / vela.VELA_CONFIG_FILE)
        return float(parser[f"System_Config.{self.system_config}"]["core_clock"])

    def compile(self, data: bytes, name: str = "model", per_layer: bool = False,
                weight_formats: bool = False) -> vela.VelaResult:
        """Vela's report of a .tflite; with `per_layer` and `weight_formats` the same compile also gives
        each operator's cycles and weight format (what `operator_cycles` and `weight_formats` return)."""
        return vela.compile_model(data, self, name, per_layer=per_layer, weight_formats=weight_formats)

    def operator_cycles(self, data: bytes) -> list[dict]:
        return list(self.compile(data, per_layer=True).operator_cycles)

    def weight_formats(self, data: bytes) -> list:
        """Per operator of a .tflite, the weight format Vela chose: "Default|Sparse2_4" where an
        Ethos-U85 runs the weights 2:4-sparse (see `two_four_problems`), "Default" for dense ones,
        None for operators without weights."""
        return list(self.compile(data, weight_formats=True).weight_formats)

    def describe(self) -> dict:
        return {"name": self.name, "accelerator": self.accelerator, "system_config": self.system_config,
                "memory_mode": self.memory_mode}


def two_four_problems(codes, kind: str) -> list[str]:
    """Why a layer's int8 weight codes (TFLite layout) would not run in Vela 5.2's Ethos-U85 2:4 sparse
    format; empty if they meet its rules: not a depthwise layer, codes in [-127, 127], and at least 2
    zeros in every group of 4 consecutive input-channel weights, the input depth padded with zeros to
    a multiple of 4 (measured: a dense convolution of 1 or 2 input channels runs sparse, of 3 or 5 not).
    Elsewhere Vela falls back to dense weights (no cycles saved)."""
    codes = np.asarray(codes)
    if kind == "depthwise":
        return ["a depthwise layer"]
    problems = ["a code of -128"] if codes.min(initial=0) < -127 else []
    padded = np.pad(codes, [(0, 0)] * (codes.ndim - 1) + [(0, -codes.shape[-1] % 4)])
    zeros = (padded.reshape(-1, 4) == 0).sum(axis=1)
    short = int((zeros < 2).sum())
    if short:
        problems.append(f"{short} of {zeros.size} groups of 4 input-channel weights with fewer than 2 zeros")
    return problems


def _factory(accelerator):
    def make(system_config: str = "", memory_mode: str = "") -> EthosU:
        family = accelerator.rsplit("-", 1)[0]
        return EthosU(accelerator, system_config or _DEFAULT_SYSTEM_CONFIG[family],
                      memory_mode or DEFAULT_MEMORY_MODE)
    return make


for _accelerator in ACCELERATORS:
    register_target(_accelerator, _factory(_accelerator))
