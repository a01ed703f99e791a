"""The cascade on real (tiny) int8 .tflite members: descriptor round trip, bad input, end to end,
members trained here or searched by UDC."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from search_helpers import DIGITS, digits_config, digits_flags
from udc.data import load_raw, load_splits, make_splits
from udc.deploy.tflm import MicroInterpreter
from udc.ensemble import Cascade, calibrate, load_members
from udc.ensemble import cascade as logic
from udc.ensemble.calibration import GoalNotReachableError
from udc.ensemble.descriptor import DescriptorError
from udc.ensemble.members import IncompatibleMembersError, check_compatible
from udc.errors import ConfigError, UdcError
from udc.workflows.ensemble_members import search_members, train_width_members

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def digits():
    return make_splits(load_raw("digits"), val_fraction=0.2, seed=0)


@pytest.fixture(scope="module")
def member_paths(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("members")
    return train_width_members(digits, (0.125, 0.25, 0.5), out, epochs=2, batch_size=64,
                               learning_rate=1e-2, calibration_size=100)


@pytest.fixture(scope="module")
def members(member_paths):
    from udc.targets import get_target

    return load_members(member_paths, target=get_target("ethos-u55-128"), latency_repeats=5)


def test_members_are_ordered_and_costed(members):
    cycles = [m.vela_cycles for m in members]
    assert all(c > 0 for c in cycles) and cycles == sorted(cycles)
    assert all(m.host_latency_ms > 0 for m in members)
    # What storing each costs, from Vela: wider members store more.
    stored = [(m.encoded_bytes, m.flash_kib) for m in members]
    assert all(b > 0 and f * 1024 >= b for b, f in stored) and stored == sorted(stored)
    p = members[0].probabilities(np.zeros((3, 8, 8, 1), np.float32))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_descriptor_round_trip_and_lazy_runtime(members, digits, tmp_path):
    result = calibrate(members, digits, rule="margin", max_drop=2.0)
    path = result.cascade.save(tmp_path / "cascade.json")
    d = json.loads(path.read_text())
    assert d["rule"] == "margin" and len(d["thresholds"]) == 2 and len(d["members"]) == 3
    assert {"sha256", "input_quantization", "output_quantization", "file"} <= set(d["members"][0])
    loaded = Cascade.load(path)
    assert loaded.thresholds == result.cascade.thresholds
    assert [m.sha256 for m in loaded.members] == [m.sha256 for m in result.cascade.members]
    probs, exits = loaded.predict_with_exits(digits.test.x)
    # The lazy runtime gives what the logic gives on all members' probabilities.
    assert d["combination"]["kind"] == "log_linear"
    for w, w_loaded in zip(result.cascade.stage_weights, loaded.stage_weights):
        np.testing.assert_allclose(w, w_loaded)
    expected = logic.run_cascade([m.probabilities(digits.test.x) for m in loaded.members],
                                 loaded.thresholds, "margin", [m.vela_cycles for m in loaded.members],
                                 loaded.stage_weights)
    np.testing.assert_array_equal(exits, expected.exit_stage)
    np.testing.assert_array_equal(probs.argmax(1), expected.predictions)
    assert np.mean(probs.argmax(1) == digits.test.y) == pytest.approx(result.report["chosen"]["test_accuracy"])


def test_the_cascade_runs_in_tflite_micro_as_in_litert(members, digits, tmp_path):
    """The same descriptor run by TensorFlow Lite Micro's kernels, one image at a time as on a device: each member's
    int8 outputs within one code of LiteRT's (the two runtimes' kernels may round a code apart), so the cascade
    answers alike."""
    result = calibrate(members, digits, rule="max_prob", cost_metric="vela_cycles", max_drop=1.0, log=lambda _: None)
    path = result.cascade.save(tmp_path / "cascade.json")
    litert, micro = Cascade.load(path), Cascade.load(path, runtime="tflm")
    x = digits.test.x[:120]
    for member in litert.members:
        codes = MicroInterpreter(member.data).outputs(member.classifier.quantize_input(x))
        assert np.abs(codes.astype(int) - member.classifier.raw_outputs(x).astype(int)).max() <= 1
    (p_lite, exits_lite), (p_micro, exits_micro) = litert.predict_with_exits(x), micro.predict_with_exits(x)
    assert np.mean(p_lite.argmax(1) == p_micro.argmax(1)) >= 0.97 and np.mean(exits_lite == exits_micro) >= 0.95
    with pytest.raises(UdcError, match=r"unknown runtime 'gpu'; choose one of: litert, tflm"):
        Cascade.load(path, runtime="gpu")


def test_a_cost_share_goal_takes_the_most_accurate_point_within_it(members, digits):
    """--max_cost_ratio: the best validation accuracy at that share of the full ensemble's average cycles."""
    result = calibrate(members, digits, cost_metric="vela_cycles", max_cost_ratio=0.5, log=lambda _: None)
    report = result.report
    full = report["full_ensemble"]["cost"]["vela_cycles"]
    assert report["goal"]["max_cost"] == pytest.approx(0.5 * full) and report["goal"]["max_drop_points"] is None
    assert report["chosen"]["val_average_cost"] <= 0.5 * full + 1e-6
    within = [c for c in report["curve"] if c["val_average_cost"] <= 0.5 * full + 1e-6]
    assert report["chosen"]["val_accuracy"] == max(c["val_accuracy"] for c in within)


def test_the_flash_peer_bounds_the_cost_from_below_the_best_single_model_within_the_cascades_flash(members, digits):
    """--cheaper_than_flash_peer: the cascade chosen from a pool costs less than its flash peer, the most accurate
    single model (validation) that fits in the flash its members take together; a lone member cannot."""
    result = calibrate(members, digits, cost_metric="vela_cycles", max_cost_ratio=1.0, max_members=2,
                       cheaper_than_flash_peer=True, log=lambda _: None)
    report = result.report
    peer = report["goal"]["flash_peer"]
    fitting = [m for m in members if m.flash_kib <= report["storage"]["flash_kib"] + 1e-9]
    val_accuracy = {m.name: float(np.mean(m.probabilities(digits.val.x).argmax(1) == digits.val.y)) for m in fitting}
    assert peer["name"] in val_accuracy and peer["val_accuracy"] == pytest.approx(max(val_accuracy.values()))
    assert report["goal"]["max_cost"] == pytest.approx(report["full_ensemble"]["cost"]["vela_cycles"])
    below_peer = [c for c in report["curve"] if c["val_average_cost"] < peer["cost"]]
    assert report["chosen"]["val_average_cost"] < peer["cost"]
    assert report["chosen"]["val_accuracy"] == max(c["val_accuracy"] for c in below_peer)
    with pytest.raises(GoalNotReachableError, match=r"or drop --cheaper_than_flash_peer \(the flash peer"):
        calibrate(members[:1], digits, cheaper_than_flash_peer=True, log=lambda _: None)


def test_descriptor_with_changed_or_missing_file_is_refused(members, tmp_path):
    import shutil

    copies = []
    for m in members[:2]:
        copies.append(tmp_path / f"{m.name}.tflite")
        shutil.copy(m.path, copies[-1])
    copied = load_members(copies, measure_latency=False)
    path = Cascade(copied, [0.5], "max_prob").save(tmp_path / "cascade.json")
    data = bytearray(copies[1].read_bytes())
    data[-1] ^= 1
    copies[1].write_bytes(bytes(data))
    with pytest.raises(DescriptorError, match="sha256"):
        Cascade.load(path)
    copies[1].unlink()
    with pytest.raises(DescriptorError, match="missing"):
        Cascade.load(path)
    d = json.loads(path.read_text())
    d["thresholds"] = [1.5]
    shutil.copy(members[1].path, copies[1])
    d["members"][1]["sha256"] = members[1].sha256
    path.write_text(json.dumps(d))
    with pytest.raises(logic.ThresholdError, match=r"\[0, 1\]"):
        Cascade.load(path)


class _FakeClassifier:
    """Stands in for a TfliteClassifier with other classes or input quantization."""

    def __init__(self, real, input_shape=None, num_classes=None, input_quantization=None,
                 output_quantization=None):
        self.input_shape = input_shape or real.input_shape
        self.num_classes = num_classes or real.num_classes
        self.input_details, self.output_details = real.input_details, real.output_details
        self.input_quantization = input_quantization or real.input_quantization
        self.output_quantization = output_quantization or real.output_quantization


def test_incompatible_members_are_clear_errors(members, member_paths):
    import dataclasses

    with pytest.raises(IncompatibleMembersError, match="at least 2"):
        load_members(member_paths[:1], measure_latency=False)
    real = members[1].classifier
    fakes = {
        "different input shapes": _FakeClassifier(real, input_shape=(16, 16, 1)),
        "different class counts": _FakeClassifier(real, num_classes=5),
        "different scales": _FakeClassifier(real, input_quantization=(1.0, -128)),  # inputs in 0..255
        "cannot be dequantized": _FakeClassifier(real, output_quantization=(0.0, 0)),
    }
    for message, fake in fakes.items():
        with pytest.raises(IncompatibleMembersError, match=message):
            check_compatible([members[0], dataclasses.replace(members[1], classifier=fake)])


def _run_cli(monkeypatch, args):
    from absl import flags

    from udc.cli import ensemble as cli

    cli.define_flags()
    flags.FLAGS.unparse_flags()
    # Verbose keeps sys.stderr as it is: the quiet mode writes to a copy of file descriptor 2,
    # which capsys does not capture.
    monkeypatch.setenv("UDC_VERBOSE", "1")
    monkeypatch.setattr(sys, "argv", ["udc-ensemble"] + args)
    with pytest.raises(SystemExit) as exit_info:
        cli.run()
    return exit_info.value.code


def test_cli_end_to_end(member_paths, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    code = _run_cli(monkeypatch, ["--members", ",".join(member_paths), "--dataset", "digits",
                                  "--val_fraction", "0.2", "--max_drop", "1.0", "--output_dir", str(out),
                                  "--latency_repeats", "5"])
    assert code in (0, None)
    report = json.loads((out / "ensemble.json").read_text())
    assert (out / "ensemble.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "ensemble.md").read_text()
    assert "udc-ensemble --members" in md and "cycles" in md and " ms" in md
    # The device stores every member: the cascade's flash is the members' sum, beside its average cycles.
    storage = report["storage"]
    assert storage["members"] == 3 and storage["encoded_bytes"] == sum(
        m["storage"]["encoded_bytes"] for m in report["members"])
    assert storage["flash_kib"] == pytest.approx(sum(m["storage"]["flash_kib"] for m in report["members"]))
    assert f"stored on the device: all 3 members, {storage['encoded_bytes']:,} B of encoded weights" in md
    chosen = report["chosen"]
    assert sum(chosen["test_exit_fractions"]) == pytest.approx(1.0)
    assert set(chosen["test_average_cost"]) == {"vela_cycles", "host_latency"}
    assert chosen["val_accuracy"] >= report["full_ensemble"]["val_accuracy"] - 0.01 - 1e-9
    assert len(report["members"]) == 3 and report["curve"]
    # Against every single member the cascade can afford, judged on test, not only the one best on validation.
    affordable = [m["test_accuracy"] for m in report["members"]
                  if m["cost"]["vela_cycles"] <= chosen["test_average_cost"]["vela_cycles"]]
    assert chosen["best_single_member_at_or_below_cost"]["test_accuracy"] == max(affordable)
    assert chosen["beats_best_single_member_at_or_below_cost"] == (chosen["test_accuracy"] > max(affordable))
    cascade = Cascade.load(out / "cascade.json")
    assert cascade.thresholds == chosen["thresholds"]


def test_cli_user_error_is_one_line(member_paths, tmp_path, monkeypatch, capsys):
    code = _run_cli(monkeypatch, ["--members", ",".join(member_paths), "--dataset", "fashion_mnist",
                                  "--max_drop", "1", "--output_dir", str(tmp_path), "--latency_repeats", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("udc-ensemble: error: ") and "shape" in err[-1]
    assert not any("Traceback" in line for line in err)


def test_cli_reads_an_image_folder_at_the_members_input_size(member_paths, tmp_path, monkeypatch):
    """Given members of 8x8 grey images, a folder of 20x16 colour images in ten class folders is read at 8x8 in grey."""
    from udc.compat import tf

    rng = np.random.default_rng(0)
    for label in range(10):
        (tmp_path / "images" / f"class_{label}").mkdir(parents=True)
        for i in range(10):
            image = rng.integers(0, 256, (20, 16, 3), dtype=np.uint8)
            (tmp_path / "images" / f"class_{label}" / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    out = tmp_path / "out"
    code = _run_cli(monkeypatch, ["--members", ",".join(member_paths), "--dataset", "image_folder",
                                  f"--data_dir={tmp_path / 'images'}", "--max_drop", "1", "--output_dir", str(out),
                                  "--latency_repeats", "1"])
    assert code in (0, None)
    report = json.loads((out / "ensemble.json").read_text())
    assert report["dataset"]["name"] == "image_folder" and report["dataset"]["test_size"] == 10


def test_train_width_members_checks_seeds(digits, tmp_path):
    from udc.errors import UdcError

    with pytest.raises(UdcError, match="2 seeds"):
        train_width_members(digits, (0.5,), tmp_path, seeds=(1, 2))


@pytest.mark.parametrize("args, message", [
    (["--dataset", "digits", "--max_drop", "1"], "give the members"),
    (["--dataset", "digits", "--members", "a.tflite,b.tflite"], "give a goal"),
    (["--dataset", "digits", "--max_drop", "1", "--members", "missing.tflite,b.tflite"], "cannot read missing.tflite"),
    (["--max_drop", "1", "--members", "a.tflite,b.tflite", f"--config={DIGITS}", "--budgets_kb=2,3"],
     "--members and --config are alternatives"),
    (["--max_drop", "1", "--train_widths", "0.5,1", f"--config={DIGITS}", "--budgets_kb=2,3"],
     "--config and --train_widths are alternatives"),
    (["--max_drop", "1", f"--config={DIGITS}", "--budgets_kb="], "--config needs at least two budgets"),
    (["--max_drop", "1", f"--config={DIGITS}"], "--config needs at least two budgets"),
    (["--max_drop", "1", f"--config={DIGITS}", "--budgets_kb=3"], "--config needs at least two budgets"),
    (["--max_drop", "1", "--members", "a.tflite,b.tflite", "--budgets_kb=2,3"], "--budgets_kb needs --config"),
    (["--max_drop", "1", f"--config={DIGITS}", "--budgets_kb=2,3", "--dataset=digits", "--seed=1"],
     "drop --dataset, --seed"),
    (["--max_drop", "1", f"--config={DIGITS}", "--budgets_kb=2,x"], "--budgets_kb must be numbers"),
    (["--max_drop", "1", f"--config={DIGITS}", "--budgets_kb=2,2"], "listed twice"),
    (["--max_drop", "1", f"--config={DIGITS}", "--budgets_kb=2,3", "--accelerator=ethos-u99"], "ethos-u99"),
    (["--max_drop", "1", f"--config={DIGITS}", "--budgets_kb=3", "--supernet_seeds=1"],
     "--config needs at least two budgets, or one budget and two --supernet_seeds"),
    (["--max_drop", "1", f"--config={DIGITS}", "--budgets_kb=3", "--supernet_seeds=1,1"],
     "--supernet_seeds must be distinct integers"),
    (["--max_drop", "1", f"--config={DIGITS}", "--budgets_kb=3", "--supernet_seeds=1,x"],
     "--supernet_seeds must be distinct integers"),
    (["--max_drop", "1", "--members", "a.tflite,b.tflite", "--supernet_seeds=1,2"],
     "--supernet_seeds needs --config"),
    (["--max_drop", "1", f"--config={DIGITS}", "--budgets_kb=2,3", "--supernet_seeds=1,2,3,4,5"],
     "a cascade of 10 members"),
])
def test_cli_other_user_errors(args, message, tmp_path, monkeypatch, capsys):
    code = _run_cli(monkeypatch, args + ["--output_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("udc-ensemble: error: ") and message in err[-1]


@pytest.mark.e2e
def test_cli_cascade_from_udc_searches(tmp_path, monkeypatch):
    """--config and --budgets_kb: two short digits searches -> members -> calibrated cascade; with
    --augmented_budgets_kb the 3 KiB search is also fine-tuned with augmentation, a third member."""
    # No supernet epochs (test_search covers them): the budget's first selection, fine-tuned briefly
    # (what is checked is the path from searches to a cascade, not the members' accuracy).
    fast = {"supernet_epochs": 0, "search_epochs": 0, "finetune_epochs": 2}
    code = _run_cli(monkeypatch, digits_flags(**fast) + ["--budgets_kb=3,2", "--augmented_budgets_kb=3",
                                                         "--augmented_finetune_epochs=1", f"--workdir={tmp_path}",
                                                         "--max_drop=1", "--latency_repeats=5"])
    assert code in (0, None)
    searched = [str(tmp_path / name / "model.tflite") for name in ("udc_2kb", "udc_3kb")]
    augmented = tmp_path / "udc_3kb_augmented"
    report = json.loads((tmp_path / "ensemble.json").read_text())
    assert sorted(m["file"] for m in report["members"]) == searched + [str(augmented / "model.tflite")]
    assert sorted(m["name"] for m in report["members"]) == ["udc_2kb/model", "udc_3kb/model",
                                                            "udc_3kb_augmented/model"]
    assert report["dataset"]["name"] == "digits" and "--budgets_kb=3,2" in report["command"]
    # The augmented member is the 3 KiB search's child, fine-tuned 1 epoch with the config's shifts.
    spec = json.loads((augmented / "arch_spec.json").read_text())
    assert spec["layers"] == json.loads((tmp_path / "udc_3kb" / "arch_spec.json").read_text())["layers"]
    finetune = json.loads((augmented / "finetune" / "state.json").read_text())["settings"]
    assert finetune["epochs"] == 1 and finetune["recipe"]["augmentation"] == {"shift": 1, "horizontal_flip": False}
    cascade = Cascade.load(tmp_path / "cascade.json")
    splits = load_splits(digits_config(**fast))  # the config's splits, as the CLI calibrated on
    predictions = cascade.predict(splits.test.x)
    assert np.mean(predictions == splits.test.y) == pytest.approx(report["chosen"]["test_accuracy"])
    # The same config again: both searches are finished, so neither runs again.
    lines, stamps = [], [Path(p).stat().st_mtime_ns for p in searched]
    assert search_members(digits_config(**fast), [3, 2], tmp_path, log=lines.append) == searched
    assert sum("holds a finished search of this config" in line for line in lines) == 2
    assert [Path(p).stat().st_mtime_ns for p in searched] == stamps
    with pytest.raises(ConfigError, match="different config"):
        search_members(digits_config(**fast, arch_learning_rate=0.1), [2, 3], tmp_path)


def test_search_members_trains_one_supernet_per_seed(tmp_path, monkeypatch):
    """With supernet_seeds each seed searches every budget in WORKDIR/seed_<S> on its own supernet, all on the
    config's split; the searches themselves are udc-search's (covered by the end-to-end test above)."""
    from udc.workflows import ensemble_members

    searched = []
    monkeypatch.setattr(ensemble_members, "search_and_export",
                        lambda config, workdir, log: searched.append((config, Path(workdir))))
    config = digits_config()
    config.seed = 4
    paths = search_members(config, [3, 2], tmp_path, log=lambda line: None, supernet_seeds=[7, 5])
    order = [("seed_7", "udc_2kb"), ("seed_5", "udc_2kb"), ("seed_7", "udc_3kb"), ("seed_5", "udc_3kb")]
    assert paths == [str(tmp_path / s / b / "model.tflite") for s, b in order]
    assert [(c.seed, c.split_seed, c.budget_kb) for c, _ in searched] == [(7, 4, 2.0), (5, 4, 2.0), (7, 4, 3.0),
                                                                          (5, 4, 3.0)]
    assert {c.search.supernet for c, _ in searched} == {str(tmp_path / "seed_7" / "supernet"),
                                                        str(tmp_path / "seed_5" / "supernet")}
    assert config.seed == 4 and config.split_seed is None  # the caller's config is left as it was
    with pytest.raises(UdcError, match="lists a seed twice"):
        search_members(config, [2], tmp_path, supernet_seeds=[1, 1])


def test_search_members_adds_augmented_fine_tunes_of_searches(tmp_path, monkeypatch):
    """With augmented_budgets_kb each search at those budgets is forked into udc_<K>kb_augmented (after it ran) and
    fine-tuned there with the augmentation for the given epochs; those members come after the plain ones."""
    from udc.workflows import ensemble_members

    steps = []
    monkeypatch.setattr(ensemble_members, "search_and_export",
                        lambda config, workdir, log: steps.append(("search", config, Path(workdir))))
    monkeypatch.setattr(ensemble_members, "fork_search",
                        lambda source, workdir: steps.append(("fork", Path(source), Path(workdir))))
    config = digits_config()
    paths = search_members(config, [3, 2], tmp_path, log=lambda line: None, supernet_seeds=[7, 5],
                           augmented_budgets_kb=[3], augmented_finetune_epochs=4)
    plain = [("seed_7", "udc_2kb"), ("seed_5", "udc_2kb"), ("seed_7", "udc_3kb"), ("seed_5", "udc_3kb")]
    augmented = [("seed_7", "udc_3kb_augmented"), ("seed_5", "udc_3kb_augmented")]
    assert paths == [str(tmp_path / s / b / "model.tflite") for s, b in plain + augmented]
    assert [(kind, Path(b).relative_to(tmp_path).parts) for kind, _, b in steps] == (
        [("search", p) for p in plain] + [(kind, a) for a in augmented for kind in ("fork", "search")])
    forks = [(a, b) for kind, a, b in steps if kind == "fork"]
    assert forks == [(tmp_path / s / "udc_3kb", tmp_path / s / "udc_3kb_augmented") for s in ("seed_7", "seed_5")]
    searches = [c for kind, c, _ in steps if kind == "search"]
    assert [(c.search.finetune_augment, c.search.finetune_epochs) for c in searches[4:]] == [(True, 4), (True, 4)]
    assert all(not c.search.finetune_augment for c in searches[:4]) and not config.search.finetune_augment
    assert [(c.seed, c.budget_kb, c.search.supernet) for c in searches[4:]] == [
        (c.seed, c.budget_kb, c.search.supernet) for c in searches[2:4]]  # the same search, fine-tuned again

    unmoved = digits_config()
    unmoved.augment.shift = 0
    for other, budgets, message in ((config, [2], "augmented budgets 3 KiB are not among the searched budgets"),
                                    (digits_config(finetune_augment=True), [3], "already fine-tunes every member"),
                                    (unmoved, [3], "augment section does nothing")):
        with pytest.raises(UdcError, match=message):
            search_members(other, budgets, tmp_path, augmented_budgets_kb=[3])


def test_a_member_trained_on_another_split_is_refused(digits_int8):
    """A udc export names its dataset, split seed and validation share: a member trained with another seed
    may have trained on the images the cascade is calibrated on, and is refused in one line."""
    import types

    from udc import tflite_file
    from udc.ensemble import check_held_out

    def member(name, **config):
        data = tflite_file.with_metadata(digits_int8, {"config": config}) if config else digits_int8
        return types.SimpleNamespace(name=name, data=data)

    same = member("same", dataset="digits", seed=0, val_fraction=0.1, max_train_examples=500)  # a cut: held out too
    check_held_out([same, member("foreign")], "digits", 0, 0.1)
    with pytest.raises(IncompatibleMembersError, match=r"member other was trained on digits with split seed 1 and "
                                                       r"val_fraction 0.1, the cascade is calibrated on digits with "
                                                       r"seed 0") as info:
        check_held_out([same, member("other", dataset="digits", seed=1, val_fraction=0.1)], "digits", 0, 0.1)
    assert "\n" not in str(info.value)
    # Another seed (initial weights, batch order) on the same split: `split_seed` names the split, and it is held out.
    apart = member("apart", dataset="digits", seed=1, split_seed=0, val_fraction=0.1)
    check_held_out([same, apart], "digits", 0, 0.1)
    config = digits_config()
    config.seed, config.split_seed = 1, 0
    splits, reference = load_splits(config), load_splits(digits_config())
    np.testing.assert_array_equal(splits.val.y, reference.val.y)
    np.testing.assert_array_equal(splits.val.x, reference.val.x)
