from udc.compat import keras
from udc.models import build_backbone, fmnist_cnn
from udc.errors import ConfigError
import pytest


def test_fmnist_cnn_is_exactly_the_reference_backbone():
    model = fmnist_cnn((28, 28, 1), 10)
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 64, 64, 128, 128]
    assert [c.strides for c in convs] == [(1, 1), (2, 2), (1, 1), (2, 2), (1, 1)]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" and not c.use_bias for c in convs)
    kinds = [type(l).__name__ for l in model.layers]
    assert kinds == ["InputLayer"] + ["Conv2D", "BatchNormalization", "ReLU"] * 5 + [
        "GlobalAveragePooling2D", "Dense"]
    assert model.output_shape == (None, 10)
    conv_weights = 9 * (1 * 32 + 32 * 64 + 64 * 64 + 64 * 128 + 128 * 128)
    assert sum(int(c.kernel.shape.num_elements()) for c in convs) == conv_weights


def test_unknown_backbone():
    with pytest.raises(ConfigError, match="unknown backbone 'resnet'"):
        build_backbone("resnet", (28, 28, 1), 10)
