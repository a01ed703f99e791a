"""QAT fine-tuning of a stripped model: grid configs kept, pruned weights kept at zero, dead channels exported."""

import numpy as np
import pytest

from udc import tflite_file
from udc.compat import keras
from udc.costs import size_model
from udc.deploy.convert import convert_to_int8, saturated_biases
from udc.deploy.finetune import check_quantize_configs, finetune, quantize_model
from udc.deploy.interpreter import TfliteClassifier
from udc.errors import UdcError
from udc.space.quantizers import GridQuantizeConfig, code_step
from udc.targets import get_target
from udc.training.backbone import keras_accuracy

BITS = {"conv0": 4, "conv1": 2, "logits": 5}
SPARSITY = {"conv0": 0.25, "conv1": 0.75, "logits": 0.5}
TARGET = get_target("ethos-u55-128")


@pytest.fixture(scope="module")
def trained(digits_splits):
    """A float model trained briefly (the stripped model of a trained supernet has trained weights too)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv0")(inputs)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(digits_splits.train.x, digits_splits.train.y, batch_size=32, epochs=6, verbose=0)
    return model.get_weights()


def _stripped(weights):
    """A stripped-style model: activations inside the layers, kernels pruned, one dead channel with a positive bias."""
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv0")(inputs)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))
    model.set_weights(weights)
    masks = {}
    for name, rate in SPARSITY.items():
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        mask = (np.abs(kernel) > np.quantile(np.abs(kernel), rate)).astype(np.float32)
        if name == "conv1":
            mask[..., 5] = 0.0  # a fully pruned output channel ...
            bias[5] = 0.5  # ... whose output is a positive constant
        masks[name] = mask
        layer.set_weights([kernel * mask, bias])
    return model, masks, dict(BITS)


def test_every_layer_keeps_its_grid_config_after_quantize_apply(trained):
    model, _, bits = _stripped(trained)
    qat = quantize_model(model, bits)
    wrapped = {l.layer.name: l.quantize_config for l in qat.layers if hasattr(l, "quantize_config")}
    for name, bits in BITS.items():
        assert isinstance(wrapped[name], GridQuantizeConfig) and wrapped[name].bits == bits
    assert wrapped["conv0"].per_axis and not wrapped["logits"].per_axis


def test_a_conv_followed_by_a_separate_relu_is_caught():
    """The trap of docs/stack_facts.md: tfmot's layout transform swaps the custom config; check_quantize_configs says so."""
    import tensorflow_model_optimization as tfmot

    from udc.space.quantizers import CUSTOM_OBJECTS

    annotate = tfmot.quantization.keras.quantize_annotate_layer
    inputs = keras.Input((8, 8, 1))
    x = annotate(keras.layers.Conv2D(8, 3, name="conv0"), GridQuantizeConfig(4))(inputs)
    x = annotate(keras.layers.ReLU())(x)  # the default scheme fuses Conv + ReLU ...
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))
    with tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS):
        qat = tfmot.quantization.keras.quantize_apply(model)
    assert type(qat.get_layer("quant_conv0").quantize_config).__name__ == "NoOpQuantizeConfig"  # ... and drops ours
    with pytest.raises(UdcError, match="replaced the 4-bit grid config of layer conv0"):
        check_quantize_configs(qat, {"conv0": 4})


def test_finetune_keeps_sparsity_and_grid_and_the_dead_channel_exports_cleanly(trained, digits_splits):
    model, masks, bits = _stripped(trained)
    qat = finetune(model, bits, masks, digits_splits, epochs=2, learning_rate=1e-3, batch_size=32,
                   keep_sizes_for=TARGET, log=lambda _: None)
    data = convert_to_int8(qat, digits_splits.train.x[:128])
    assert saturated_biases(data) == 0
    stored = tflite_file.weight_tensors(tflite_file.parse(data))
    assert len(stored) == 3
    for tensor, name in zip(stored, BITS):
        values = tensor.values
        assert tensor.dtype == "INT8"
        assert len(np.unique(values)) <= 2 ** BITS[name] - 1
        assert set(np.unique(values) % code_step(BITS[name])) == {0}
        assert np.mean(values == 0) >= SPARSITY[name]
    conv1 = stored[1].values  # OHWI
    assert np.all(conv1[5] == 0)
    # Every layer's stored codes take at most the encoded bytes the stripped model's did, and where the
    # step can reach it, at least 1 % less (udc.deploy.size_keeping).
    before = [size_model.codes_bytes(size_model.kernel_codes(model.get_layer(name).get_weights()[0], bits,
                                                             "dense" if name == "logits" else "conv"),
                                     "dense" if name == "logits" else "conv", TARGET)
              for name, bits in BITS.items()]
    after = size_model.exported_bytes(data, TARGET)["layers"]
    assert all(a <= b for a, b in zip(after, before)), (before, after)
    assert sum(after) >= 0.97 * sum(before), (before, after)
    keras_acc = keras_accuracy(qat, digits_splits.test)
    tflite_acc = TfliteClassifier(data).accuracy(digits_splits.test.x, digits_splits.test.y)
    assert keras_acc > 0.8
    assert abs(keras_acc - tflite_acc) <= 0.003 + 1e-9, (keras_acc, tflite_acc)


def _finetune_into(weights, splits, directory, **kwargs):
    model, masks, bits = _stripped(weights)
    lines = []
    qat = finetune(model, bits, masks, splits, epochs=2, learning_rate=1e-3, batch_size=32, steps_per_epoch=12,
                   keep_sizes_for=TARGET, checkpoint_dir=directory, log=lines.append, **kwargs)
    return qat, [line for line in lines if line.startswith("fine-tune epoch")]


@pytest.fixture(scope="module")
def straight_finetune(trained, digits_splits, tmp_path_factory):
    return _finetune_into(trained, digits_splits, tmp_path_factory.mktemp("straight") / "finetune")


def test_an_interrupted_finetune_resumes_to_the_weights_of_an_uninterrupted_one(
        trained, digits_splits, straight_finetune, tmp_path):
    straight, straight_lines = straight_finetune
    assert [line.split(":")[0] for line in straight_lines] == ["fine-tune epoch 1/2", "fine-tune epoch 2/2"]
    stopped, lines = _finetune_into(trained, digits_splits, tmp_path / "finetune", stop_after_epochs=1)
    assert stopped is None and lines == straight_lines[:1]
    resumed, lines = _finetune_into(trained, digits_splits, tmp_path / "finetune")
    assert len(lines) == 1 and lines[0].startswith("fine-tune epoch 2/2 (resumed after epoch 1): ")
    assert lines[0].split(": ", 1)[1] == straight_lines[1].split(": ", 1)[1]
    for a, b in zip(straight.weights, resumed.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)


def test_model_qat_keras_loads_with_load_model_and_exports(straight_finetune, digits_splits, tmp_path):
    from udc.deploy.model_io import load_model, save_model

    qat, _ = straight_finetune
    loaded = load_model(save_model(qat, tmp_path / "model_qat.keras"))
    x = digits_splits.test.x[:64]
    np.testing.assert_array_equal(loaded(x).numpy(), qat(x).numpy())
    calibration = digits_splits.train.x[:128]
    assert convert_to_int8(loaded, calibration) == convert_to_int8(qat, calibration)


def test_a_non_finite_weight_stops_the_finetune_at_its_step(trained, digits_splits):
    import dataclasses

    from udc.data import Split

    x = digits_splits.train.x.copy()
    x[:] = np.nan
    broken = dataclasses.replace(digits_splits, train=Split(x, digits_splits.train.y))
    model, masks, bits = _stripped(trained)
    with pytest.raises(UdcError, match=r"became non-finite \(NaN or inf\) at fine-tune epoch 1 step 1; "
                                       r"stopped and no fine-tune checkpoint is kept"):
        finetune(model, bits, masks, broken, epochs=1, learning_rate=1e-3, batch_size=32, log=lambda _: None)


def test_a_recipe_loss_replaces_the_cross_entropy(trained, digits_splits):
    """Recipe.loss gets the labels, the QAT logits and the teacher's logits: a loss with no gradient leaves every
    kernel where the stripped model had it, where the usual cross-entropy moves them."""
    from udc.compat import tf
    from udc.deploy.finetune import Recipe, kernel_of, wrapped_layers

    model, masks, bits = _stripped(trained)
    seen = []

    def no_gradient(labels, logits, teacher_logits):
        seen.append((labels.shape.rank, logits.shape[-1], teacher_logits.shape[-1]))
        return 0.0 * tf.reduce_sum(logits) + 0.0 * tf.reduce_sum(teacher_logits)

    recipe = Recipe(teacher=model, loss=no_gradient)
    lines = []
    qat = finetune(model, bits, masks, digits_splits, epochs=1, learning_rate=1e-2, batch_size=32, steps_per_epoch=4,
                   recipe=recipe, log=lines.append)
    assert seen and seen[0] == (1, 10, 10)
    assert "loss 0.0000" in lines[-1]
    kept = {name: kernel_of(wrapped_layers(qat)[name]).numpy() for name in bits}
    for name in bits:
        np.testing.assert_array_equal(kept[name], model.get_layer(name).get_weights()[0], err_msg=name)
    moved = finetune(model, bits, masks, digits_splits, epochs=1, learning_rate=1e-2, batch_size=32,
                     steps_per_epoch=4, log=lambda _: None)
    assert not np.array_equal(kernel_of(wrapped_layers(moved)["conv0"]).numpy(), kept["conv0"])
    with pytest.raises(UdcError, match="needs a teacher model"):
        Recipe(loss=no_gradient)
