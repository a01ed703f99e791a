import numpy as np
import pytest

from udc.errors import UnknownAcceleratorError
from udc.hardware import ACCELERATORS, compile_model, encoded_bytes, resolve_target
from udc.hardware import tflm


def test_every_vela_accelerator_has_defaults():
    assert "ethos-u55-128" in ACCELERATORS and "ethos-u85-2048" in ACCELERATORS
    for name in ACCELERATORS:
        target = resolve_target(name)
        assert target.memory_mode == "Shared_Sram" and target.system_config.startswith("Ethos_U")
    assert resolve_target("ethos-u65-256", "Ethos_U65_High_End", "Dedicated_Sram").memory_mode == "Dedicated_Sram"


def test_unknown_accelerator_lists_the_choices():
    with pytest.raises(UnknownAcceleratorError, match="unknown accelerator 'ethos-u56-128'.*ethos-u55-128"):
        resolve_target("ethos-u56-128")


def test_codec_rewards_zeros_and_few_values():
    rng = np.random.default_rng(0)
    dense = rng.integers(-127, 128, 4096)
    sparse = np.where(rng.random(4096) < 0.75, 0, dense)
    four_bit = rng.integers(-7, 8, 4096) * 18  # 15 distinct codes, multiples of 127 // 7
    assert encoded_bytes(np.zeros(4096)) < encoded_bytes(sparse) < encoded_bytes(dense)
    assert encoded_bytes(four_bit) < 0.6 * encoded_bytes(dense)
    assert encoded_bytes(np.array([])) == 0


@pytest.mark.parametrize("accelerator", ["ethos-u55-128", "ethos-u65-256", "ethos-u85-256"])
def test_vela_places_fmnist_cnn_on_the_npu(digits_int8, accelerator):
    result = compile_model(digits_int8, resolve_target(accelerator), "digits")
    assert result.cpu_ops == 0 and result.npu_ops > 0 and result.npu_fraction == 1.0
    assert 0.9 * 278048 < result.encoded_weight_bytes < 1.2 * 278048
    assert result.flash_kib > 0 and result.cycles > 0 and result.optimised_model[4:8] == b"TFL3"


def test_tflm_runs_the_model_and_reports_its_arena(digits_int8):
    outputs, arena = tflm.run(digits_int8, np.zeros((2, 8, 8, 1), np.int8))
    assert outputs.shape == (2, 10) and outputs.dtype == np.int8
    assert 1000 < arena < 1_000_000
