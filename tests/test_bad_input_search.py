"""Bad input to udc-search and udc-train: busy workdirs, corrupt resume files, bad counts.

Every case exits with status 1, prints one line on stderr and leaves nothing half-written.
The corrupt files are copied from a real digits search interrupted after its first
fine-tune epoch, then damaged. The expected lines (WORKDIR is the case's workdir):

* locked: a workdir whose lock another process holds ->
  "WORKDIR is in use by udc process PID (started ...); wait for it or use another --workdir"
* state-truncated / state-empty: search_state.json cut in half / empty ->
  "WORKDIR/search_state.json is corrupt (...); delete WORKDIR to start over, or restore the file"
* report-truncated: report.json (beside a model.tflite) cut in half ->
  "WORKDIR/report.json is corrupt (...); delete WORKDIR to start over, or restore the file"
* checkpoint-index / checkpoint-data: the search checkpoint's .index / .data cut in half ->
  "checkpoint WORKDIR/checkpoints/ckpt-2 is corrupt (...); delete WORKDIR to start over, or restore the file"
* checkpoint-missing: the checkpoint the state names deleted ->
  "checkpoint WORKDIR/checkpoints/ckpt-2 is missing; delete WORKDIR to start over, or restore the checkpoint"
* supernet-state / supernet-checkpoint: the trained supernet's state.json / ckpt-1.index cut ->
  "WORKDIR/supernet/state.json is corrupt (...); delete WORKDIR/supernet to start over, or restore the file"
* finetune-state / finetune-checkpoint: WORKDIR/finetune/state.json or its ckpt-1.data cut ->
  "WORKDIR/finetune/state.json is corrupt (...)" / "checkpoint WORKDIR/finetune/ckpt-1 is corrupt (...)"
* train-backup: udc-train's resume checkpoint (WORKDIR/backup/chief) cut ->
  "checkpoint WORKDIR/backup/chief/ckpt-1 is corrupt (...); delete WORKDIR to start over, or restore the file"
* search-batch-0 / search-batch-negative / search-steps-negative / finetune-epochs-negative /
  train-batch-0 / train-epochs-0: ->
  "--config.search.batch_size must be a positive whole number, got 0; set --config.search.batch_size"
  (and the same for the other keys; steps_per_epoch and the epochs of the search allow 0),
  with no workdir created.
"""

import os
import shutil

import pytest

from cli_helpers import assert_user_error, half_written, udc
from search_helpers import TRAINED, copy_trained, digits_config, digits_flags
from udc.compat import tf
from udc.workdir_lock import workdir_lock
from udc.workflows.pipeline import search_and_export

FAST = TRAINED  # the shared supernet's config, which the binary's flags must give too


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, digits_supernet):
    """A digits search (on a copy of the shared trained supernet) stopped after its first fine-tune epoch:
    search and fine-tune checkpoints on disk."""
    workdir = tmp_path_factory.mktemp("interrupted")
    copy_trained(digits_supernet, workdir)
    assert search_and_export(digits_config(**FAST), workdir, log=lambda _: None, stop_after_finetune_epochs=1) is None
    return workdir


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _write_train_backup(workdir):
    """A checkpoint where udc-train's BackupAndRestore keeps it, cut in half."""
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(tf.ones([1000]))),
                                         str(workdir / "backup" / "chief"), max_to_keep=1)
    _truncate(workdir / "backup" / "chief" / f"{os.path.basename(manager.save())}.data-00000-of-00001")


DAMAGES = {
    "state-truncated": (lambda w: _truncate(w / "search_state.json"), "search_state.json is corrupt"),
    "state-empty": (lambda w: (w / "search_state.json").write_text(""), "search_state.json is corrupt"),
    "report-truncated": (lambda w: ((w / "model.tflite").write_bytes(b"TFL3"),
                                    (w / "report.json").write_text('{"tflite": {"sha')),
                         "report.json is corrupt"),
    "checkpoint-index": (lambda w: _truncate(w / "checkpoints" / "ckpt-2.index"),
                         "checkpoints/ckpt-2 is corrupt"),
    "checkpoint-data": (lambda w: _truncate(w / "checkpoints" / "ckpt-2.data-00000-of-00001"),
                        "checkpoints/ckpt-2 is corrupt"),
    "checkpoint-missing": (lambda w: (w / "checkpoints" / "ckpt-2.index").unlink(),
                           "checkpoints/ckpt-2 is missing"),
    "finetune-state": (lambda w: _truncate(w / "finetune" / "state.json"), "finetune/state.json is corrupt"),
    "finetune-checkpoint": (lambda w: _truncate(w / "finetune" / "ckpt-1.data-00000-of-00001"),
                            "finetune/ckpt-1 is corrupt"),
}


@pytest.mark.parametrize("case", list(DAMAGES))
def test_corrupt_resume_files(case, interrupted, tmp_path):
    workdir = tmp_path / "w"
    shutil.copytree(interrupted, workdir)
    damage, fragment = DAMAGES[case]
    damage(workdir)
    result = udc("search", *digits_flags(**FAST), f"--workdir={workdir}")
    owner = workdir / "supernet" if case.startswith("supernet") else workdir  # what holds the damaged file
    assert_user_error(result, f"{workdir}/{fragment}", f"delete {owner} to start over")
    assert half_written(workdir) == []


def test_corrupt_train_backup(tmp_path):
    _write_train_backup(tmp_path)
    result = udc("train", *digits_flags(), f"--workdir={tmp_path}")
    assert_user_error(result, f"checkpoint {tmp_path}/backup/chief/ckpt-1 is corrupt",
                      f"delete {tmp_path} to start over")
    assert half_written(tmp_path) == []


def test_a_locked_workdir_is_refused_at_once(interrupted, tmp_path):
    workdir = tmp_path / "w"
    shutil.copytree(interrupted, workdir)
    before = sorted(p.name for p in workdir.rglob("*"))
    with workdir_lock(workdir):
        result = udc("search", *digits_flags(**FAST), f"--workdir={workdir}")
    assert_user_error(result, f"{workdir} is in use by udc process {os.getpid()} (started ",
                      "wait for it or use another --workdir")
    assert sorted(p.name for p in workdir.rglob("*")) == before and half_written(workdir) == []


@pytest.mark.parametrize("binary, key, value, allowed", [
    ("search", "search.batch_size", 0, "a positive whole number"),
    ("search", "search.batch_size", -4, "a positive whole number"),
    ("search", "search.steps_per_epoch", -1, "0 (the whole training split) or a positive whole number"),
    ("search", "search.finetune_epochs", -1, "0 (no fine-tuning) or a positive whole number"),
    ("train", "train.batch_size", 0, "a positive whole number"),
    ("train", "train.epochs", 0, "a positive whole number"),
], ids=["search-batch-0", "search-batch-negative", "search-steps-negative", "finetune-epochs-negative",
        "train-batch-0", "train-epochs-0"])
def test_bad_counts_are_refused_before_the_workdir_is_written(binary, key, value, allowed, tmp_path):
    workdir = tmp_path / "w"
    result = udc(binary, *digits_flags(), f"--config.{key}={value}", f"--workdir={workdir}")
    assert_user_error(result, f"--config.{key} must be {allowed}, got {value}; set --config.{key}")
    assert not workdir.exists()
