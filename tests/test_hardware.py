import numpy as np
import pytest

from udc.deploy import tflm
from udc.targets import get_target
from udc.targets.codec import encoded_bytes


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
    result = get_target(accelerator).compile(digits_int8, "digits")
    assert result.cpu_ops == 0 and result.npu_ops > 0 and result.npu_fraction == 1.0
    assert 0.9 * 278048 < result.encoded_weight_bytes < 1.2 * 278048
    assert result.flash_kib > 0 and result.cycles > 0 and result.optimised_model[4:8] == b"TFL3"


def test_tflm_runs_the_model_and_reports_its_arena(digits_int8):
    outputs, arena = tflm.run(digits_int8, np.zeros((2, 8, 8, 1), np.int8))
    assert outputs.shape == (2, 10) and outputs.dtype == np.int8
    assert 1000 < arena < 1_000_000
