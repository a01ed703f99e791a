import numpy as np

from udc import tflite_file
from udc.report.inspect import format_table, inspect_model
from udc.targets.codec import encoded_bytes


def test_stats_describe_each_weight_tensor(digits_int8):
    stats = inspect_model(digits_int8)
    weights = tflite_file.weight_tensors(tflite_file.parse(digits_int8))
    assert len(stats) == len(weights) == 6
    for s, w in zip(stats, weights):
        assert s.shape == w.values.shape and s.distinct_values == np.unique(w.values).size
        assert s.zero_fraction == np.mean(w.values == 0)
        assert s.encoded_bytes == encoded_bytes(w.values) and s.stored_bytes == w.values.size
        assert 2 ** (s.effective_bits - 1) < s.distinct_values <= 2 ** s.effective_bits
    table = format_table(stats)
    assert f"{sum(s.encoded_bytes for s in stats)} codec bytes" in table
    assert "64x3x3x32" in table


def test_brick_order_bytes_for_a_target(digits_int8):
    from udc.targets import get_target

    stats = inspect_model(digits_int8, get_target("ethos-u55-128"))
    bricks = sum(s.vela_order_bytes for s in stats)
    vela = get_target("ethos-u55-128").compile(digits_int8).encoded_weight_bytes
    assert abs(bricks / vela - 1) < 0.03  # Vela adds its own pooling weights and stripes
    assert "in Vela's brick order" in format_table(stats)


def test_each_layer_says_whether_it_meets_the_u85_sparse_format(digits_int8):
    """A digits model's dense weights meet the 2:4 rules only in its first convolution (one input
    channel, padded with zeros); with an Ethos-U target the table shows the format Vela chose and
    each layer's cycles beside it."""
    from udc.targets import get_target

    stats = inspect_model(digits_int8, get_target("ethos-u85-256"))
    assert [s.two_four == "yes" for s in stats] == [True] + [False] * 5
    assert "fewer than 2 zeros" in stats[1].two_four
    assert "Sparse2_4" in stats[0].vela_format and "Sparse2_4" not in stats[1].vela_format
    cycles = [op["cycles"] for op in get_target("ethos-u85-256").operator_cycles(digits_int8)]
    weights = tflite_file.weight_tensors(tflite_file.parse(digits_int8))
    assert [s.cycles for s in stats] == [cycles[w.op_index] for w in weights] and all(s.cycles > 0 for s in stats)
    table = format_table(stats).splitlines()
    assert table[0].split()[-4:] == ["2:4", "Vela", "cycles", "name"]
    assert table[2].split()[-4:-1] == ["yes", "2:4", str(stats[0].cycles)]
    assert table[3].split()[-4:-1] == ["no", "dense", str(stats[1].cycles)]
