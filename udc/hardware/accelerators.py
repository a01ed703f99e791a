"""Ethos-U targets: every accelerator configuration Vela accepts, with defaults per family.

Defaults are microcontroller systems whose second AXI port is flash, with memory mode
Shared_Sram for every family: weights then live in read-only flash, so Vela's
`off_chip_flash_memory_used` is the model's flash footprint. Any system config and
memory mode of Vela's Arm/vela.ini can be chosen instead (DRAM-backed ones report
`dram_kib`).
"""

import dataclasses

from ethosu.vela.architecture_features import Accelerator

from udc.errors import UnknownAcceleratorError

ACCELERATORS = tuple(Accelerator.member_list())

_DEFAULT_SYSTEM_CONFIG = {
    "ethos-u55": "Ethos_U55_High_End_Embedded",
    "ethos-u65": "Ethos_U65_Embedded",
    "ethos-u85": "Ethos_U85_SYS_Flash_High",
}
DEFAULT_MEMORY_MODE = "Shared_Sram"
VELA_CONFIG_FILE = "Arm/vela.ini"


@dataclasses.dataclass(frozen=True)
class Target:
    """An accelerator with the Vela system configuration and memory mode it is compiled for."""

    accelerator: str
    system_config: str
    memory_mode: str

    @property
    def family(self) -> str:
        return self.accelerator.rsplit("-", 1)[0]

    @property
    def macs_per_cycle(self) -> int:
        return int(self.accelerator.rsplit("-", 1)[1])


def resolve_target(accelerator: str, system_config: str = "", memory_mode: str = "") -> Target:
    if accelerator not in ACCELERATORS:
        raise UnknownAcceleratorError(
            f"unknown accelerator '{accelerator}'; choose one of: {', '.join(ACCELERATORS)}"
        )
    family = accelerator.rsplit("-", 1)[0]
    return Target(
        accelerator=accelerator,
        system_config=system_config or _DEFAULT_SYSTEM_CONFIG[family],
        memory_mode=memory_mode or DEFAULT_MEMORY_MODE,
    )
