"""Checkpoints: an interrupted search resumes to the same architecture; other configs and NaN losses."""

import dataclasses
import shutil
import threading

import numpy as np
import pytest

from search_helpers import digits_config
from udc.data import Split, load_splits
from udc.errors import ConfigError, UdcError
from udc.search.loop import SupernetSearch
from udc.search.state import (SEARCH_CHECKPOINT_DIR, STATE_FILE, SUPERNET_DIR, SUPERNET_STATE_FILE, Stage, fork_search,
                              read_state)
from udc.workflows.pipeline import search_and_export

FAST = {"steps_per_epoch": 12}


def _choices(spec):
    return [(l.name, l.width, l.sparsity, l.bits, l.codec_bytes) for l in spec.layers]


def _search_state(workdir):
    return read_state(workdir / STATE_FILE)


class _SecondRun(threading.Thread):
    """Another run on WORKDIR while the first holds it: in a thread of its own, as a run in this
    process but not in the thread that holds the lock (that one may take its workdir again)."""

    def __init__(self, workdir):
        super().__init__()
        self.workdir, self.refusal = workdir, None

    def run(self):
        try:
            search_and_export(digits_config(**FAST), self.workdir, log=lambda _: None, stop_after_epochs=1)
        except Exception as error:  # what the test checks
            self.refusal = error


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A search stopped after 2 of its 3 epochs (as if interrupted): the supernet's one, the search's first.

    It is also the run a second one is refused by (test_a_second_run_on_a_workdir_in_use_is_refused):
    as the supernet's epoch ends, another thread runs udc-search on its workdir while it waits;
    once it has stopped, a third run on its workdir is let in (and, stopping at once, changes nothing).
    """
    workdir = tmp_path_factory.mktemp("interrupted")
    second = _SecondRun(workdir)

    def log(line):
        if line.startswith("supernet epoch 1/") and second.ident is None:  # not started yet
            second.start()
            second.join(timeout=300)

    assert search_and_export(digits_config(**FAST), workdir, log=log, stop_after_epochs=2) is None
    assert read_state(workdir / SUPERNET_DIR / SUPERNET_STATE_FILE)["epochs_done"] == 1
    assert _search_state(workdir)["epochs_done"] == 1
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file() and p.name != ".lock"}
    try:  # Once the first run is over, the workdir is free again (the lock file stays behind).
        third = search_and_export(digits_config(**FAST), workdir, log=lambda _: None, stop_after_epochs=2)
    except Exception as error:
        third = error
    assert {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file() and p.name != ".lock"} == before
    return workdir, second, third


def test_resume_after_interruption_gives_the_same_arch_spec(tmp_path, interrupted):
    config = digits_config(**FAST)
    interrupted, _, _ = interrupted
    # The straight run searches without a stop on the same trained supernet (the interrupted run's
    # search checkpoints taken away), so that both runs differ only in the interruption.
    shutil.copytree(interrupted, tmp_path / "straight")
    (tmp_path / "straight" / STATE_FILE).unlink()
    shutil.rmtree(tmp_path / "straight" / SEARCH_CHECKPOINT_DIR)
    lines = []
    straight = search_and_export(config, tmp_path / "straight", log=lines.append, export=False)
    assert any(line.startswith("the supernet in") and "is trained" in line for line in lines)
    shutil.copytree(interrupted, tmp_path / "resumed")
    lines = []
    resumed = search_and_export(config, tmp_path / "resumed", log=lines.append, export=False)
    assert any("resuming the search" in line and "after epoch 1 of 2" in line for line in lines)
    assert [line.split(" loss")[0] for line in lines if line.startswith(("supernet epoch", "search epoch"))] == [
        "search epoch 2/2"]
    assert _choices(resumed) == _choices(straight)
    last = _search_state(tmp_path / "resumed")["history"][-1]
    assert last == _search_state(tmp_path / "straight")["history"][-1] | {
        "seconds": last["seconds"], "step_seconds": last["step_seconds"]}

    other = digits_config(**FAST, arch_learning_rate=0.1)
    with pytest.raises(ConfigError, match=r"holds a search made with a different config "
                                          r"\(search.arch_learning_rate: 0.05 -> 0.1\)"):
        search_and_export(other, tmp_path / "resumed", log=lambda _: None, export=False)
    # The supernet's own keys are checked against the supernet's state.
    other = digits_config(**FAST, learning_rate=0.01)
    with pytest.raises(ConfigError, match=r"holds a supernet made with a different config "
                                          r"\(search.learning_rate: 0.002 -> 0.01\)"):
        search_and_export(other, tmp_path / "resumed", log=lambda _: None, export=False)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, interrupted):
    config = digits_config(**FAST)
    interrupted, _, _ = interrupted
    splits = load_splits(config)
    shutil.copytree(interrupted, tmp_path, dirs_exist_ok=True)
    x = splits.train.x.copy()
    x[:] = np.nan
    broken = dataclasses.replace(splits, train=Split(x, splits.train.y))
    search = SupernetSearch(config, broken, tmp_path, log=lambda _: None)
    with pytest.raises(UdcError, match=r"became non-finite \(NaN or inf\) at search epoch 2 step 1; stopped and "
                                       r"kept the last good checkpoint \(after search epoch 1\)") as info:
        search.run()
    assert "conv0" in str(info.value) and "\n" not in str(info.value)
    assert _search_state(tmp_path)["epochs_done"] == 1
    assert (tmp_path / _search_state(tmp_path)["checkpoint"]).with_suffix(".index").is_file()


def test_nan_in_the_supernet_training_stops_it_with_no_checkpoint(tmp_path):
    config = digits_config(**FAST, training="soft")  # one pass per step: the guard is the same, the trace shorter
    splits = load_splits(config)
    x = splits.train.x.copy()
    x[:] = np.nan
    broken = dataclasses.replace(splits, train=Split(x, splits.train.y))
    # Step 1 with oneDNN on or off: its fused conv + BatchNorm + ReLU turns NaN into 0, so the
    # loss may stay finite while the weights are NaN; the guard checks the weights too.
    with pytest.raises(UdcError, match=r"became non-finite \(NaN or inf\) at supernet epoch 1 step 1; stopped "
                                       r"and no supernet epoch had finished, so there is no checkpoint"):
        SupernetSearch(config, broken, tmp_path, log=lambda _: None).run()


def test_a_second_run_on_a_workdir_in_use_is_refused(interrupted):
    """The first run holds WORKDIR's lock from start to end; a second one is refused at once, naming it.

    The first run is the `interrupted` fixture's: the second ran while it waited at the end of the
    supernet's epoch (inside the supernet's own lock too), the third after it had stopped."""
    import os

    workdir, second, third = interrupted
    assert not second.is_alive()  # refused at once: it did not wait for the first run
    with pytest.raises(UdcError, match=rf"{workdir} is in use by udc process {os.getpid()} \(started .*\); "
                                       r"wait for it or use another --workdir"):
        raise second.refusal or AssertionError("the second run was not refused")
    # The first run went on undisturbed (the fixture checks it stopped after 2 epochs, as asked),
    # and once it was over the workdir was free again: the third run was let in and stopped at once.
    assert third is None


def test_a_fork_starts_from_its_sources_search_state(tmp_path):
    """fork_search copies the state file and the checkpoint it names (not the supernet), so the fork resumes where
    the source stopped; a workdir that has a state already is left alone."""
    import tensorflow as tf

    source = tmp_path / "source"
    stage = Stage(source / STATE_FILE, source / SEARCH_CHECKPOINT_DIR, tf.train.Checkpoint(v=tf.Variable(3.0)),
                  {"seed": 1}, source)
    stage.begin()
    stage.save({"epoch": 1})
    (source / "model.tflite").write_bytes(b"the source's export")
    forked = tmp_path / "forked"
    assert fork_search(source, forked)
    assert read_state(forked / STATE_FILE) == read_state(source / STATE_FILE)
    assert sorted(p.name for p in forked.rglob("*")) == sorted(
        [STATE_FILE, SEARCH_CHECKPOINT_DIR, "ckpt-1.index", "ckpt-1.data-00000-of-00001"])
    restored = Stage(forked / STATE_FILE, forked / SEARCH_CHECKPOINT_DIR, tf.train.Checkpoint(v=tf.Variable(0.0)),
                     {"seed": 1}, forked)
    assert restored.restore() and restored.epochs_done == 1 and float(restored.checkpoint.v) == 3.0
    assert not fork_search(source, forked)
    with pytest.raises(UdcError, match="holds no search to fine-tune again"):
        fork_search(tmp_path / "nothing", tmp_path / "elsewhere")
