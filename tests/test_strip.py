"""Strip: the hard supernet and the plain stripped model compute the same thing."""


import numpy as np
import pytest

from supernet_helpers import CHOICES, trained_supernet
from udc.arch import ArchSpec, measure_arch_spec
from udc.compat import keras
from udc.costs import size_model as sm
from udc.deploy.strip import strip
from udc.space import searchable_layers, set_hard
from udc.space.children import choices_of, set_choices
from udc.targets import get_target


@pytest.fixture(scope="module")
def supernet(digits_splits):
    model = trained_supernet(digits_splits)
    set_choices(model, CHOICES)
    set_hard(model, True)
    return model


def test_hard_supernet_and_stripped_model_give_the_same_outputs(supernet, digits_splits):
    assert choices_of(supernet) == CHOICES
    plain, masks = strip(supernet)
    x = digits_splits.test.x[:64]
    expected = supernet(x, training=False).numpy()
    np.testing.assert_allclose(plain(x).numpy(), expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    # Channels are physically removed, the layers hold their activation, no BatchNorm is left.
    convs = [l for l in plain.layers if isinstance(l, keras.layers.Conv2D)]
    assert [l.filters for l in convs] == [8, 16, 24, 8, 16]
    assert [l.get_config()["activation"] for l in convs] == ["relu"] * 5
    assert not [l for l in plain.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert plain.get_layer("logits").kernel.shape == (16, 10)
    for layer in convs + [plain.get_layer("logits")]:
        c = CHOICES[layer.name]
        kernel = layer.kernel.numpy()
        assert np.mean(kernel == 0) >= c["sparsity"]
        assert np.all(kernel[masks[layer.name] == 0] == 0)
        channels = [kernel[..., i] for i in range(kernel.shape[-1])] if layer.name != "logits" else [kernel]
        for channel in channels:  # the grid survives the BatchNorm fold (a factor per channel)
            assert len(np.unique(channel)) <= 2 ** c["bits"] - 1


def test_hard_kernel_is_the_pruned_sub_kernel_that_the_size_model_encodes(supernet):
    """One sparsity-mask rule everywhere: magnitude over the chosen sub-kernel, not the full kernel."""
    layers = {l.name: l for l in searchable_layers(supernet)}
    conv1 = layers["conv1"]
    kernel = conv1.effective_kernel(training=False).numpy()
    assert np.all(kernel[:, :, 8:, :] == 0) and np.all(kernel[..., 16:] == 0)
    codes = sm.layer_codes(conv1, 4, 0.9, width=16, input_width=8)  # OHWI
    sub = np.transpose(kernel[:, :, :8, :16], (3, 0, 1, 2))
    np.testing.assert_array_equal(sub != 0, codes != 0)
    assert np.sum(codes == 0) >= int(0.9 * codes.size)


def test_arch_spec_lists_each_layer_with_estimated_and_codec_bytes(supernet, tmp_path):
    layers = searchable_layers(supernet)
    tables = sm.CodecTables(layers, get_target("ethos-u55-128")).calibrate()
    spec = measure_arch_spec(supernet, None, tables, extra_bytes=40, budget_bytes=4096)
    spec = ArchSpec.load(spec.save(tmp_path / "arch.json")).to_json()  # the typed spec's JSON round trip
    codec = sm.network_codec_bytes(layers, CHOICES, target=get_target("ethos-u55-128"))
    assert [l["name"] for l in spec["layers"]] == list(CHOICES)
    for layer in spec["layers"]:
        c = CHOICES[layer["name"]]
        assert (layer["width"], layer["sparsity"], layer["bits"]) == (c["width"], c["sparsity"], c["bits"])
        assert layer["codec_bytes"] == codec[layer["name"]]
        assert layer["estimated_bytes"] == pytest.approx(layer["codec_bytes"], rel=0.15, abs=64)
    assert [l["input_width"] for l in spec["layers"]] == [1, 8, 16, 24, 8, 16]
    assert spec["codec_bytes"] == codec["total"] + 40 and spec["budget_bytes"] == 4096
    assert choices_of(supernet) == CHOICES  # the supernet is left as it was
