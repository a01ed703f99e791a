"""Resume state of a search's two stages: where each keeps its checkpoints and state file, and the
checks that a resume is of the same config (before any slow work)."""

import shutil
from pathlib import Path

from udc.compat import tf
from udc.errors import ConfigError, UdcError
from udc.fileio import write_json_atomic
from udc.search.settings import AFTER_SEARCH_KEYS, PER_BUDGET_KEYS, config_differences, config_fingerprint
from udc.training import checkpoints

STATE_FILE = "search_state.json"  # the search stage's state, in WORKDIR
SEARCH_CHECKPOINT_DIR = "checkpoints"  # the search stage's checkpoints, in WORKDIR
SUPERNET_DIR = "supernet"  # the trained supernet's default folder in WORKDIR
SUPERNET_STATE_FILE = "state.json"  # the training stage's state, in the supernet's folder


class Stage:
    """One resumable stage of the search: its tf.train checkpoints in `directory` and the state file
    naming the last one (epochs done, history, the config fingerprint it was made with)."""

    def __init__(self, state_path, directory, checkpoint, fingerprint, root):
        self.state_path, self.directory, self.checkpoint, self.root = Path(state_path), Path(directory), checkpoint, root
        self.manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=2)
        self.state = {"epochs_done": 0, "history": [], "config": fingerprint}

    @property
    def epochs_done(self) -> int:
        return self.state["epochs_done"]

    def restore(self) -> bool:
        """Resumes from the state file if it holds this config's epochs; False if there is none."""
        saved = check_resumable(self.state_path, self.state["config"], self.root)
        if saved is None:
            return False
        if saved["epochs_done"]:
            checkpoints.restore(self.checkpoint, checkpoint_of(saved, self.state_path), self.root)
        self.state = saved
        return True

    def begin(self) -> None:
        # The config is on record before the first epoch ends: a rerun with another config is
        # refused even if no epoch finished.
        write_json_atomic(self.state_path, self.state)

    def save(self, record) -> None:
        path = self.manager.save(checkpoint_number=self.epochs_done + 1)  # the checkpoint, then the state naming it
        self.state["epochs_done"] += 1
        self.state["checkpoint"] = str(Path(path).relative_to(self.state_path.parent))
        self.state["history"].append(record)
        write_json_atomic(self.state_path, self.state)

    def last_checkpoint(self) -> Path:
        return checkpoint_of(self.state, self.state_path)


def check_resumable(state_path, fingerprint, root):
    """The saved state at `state_path` (None if none); ConfigError if it was made with another config,
    UdcError if the state or its checkpoint cannot be read (both are checked before any slow work).
    `root`: the folder an error tells the user to replace."""
    saved = read_state(state_path, root)
    if saved is None:
        return None
    if saved["epochs_done"]:
        checkpoints.check_readable(checkpoint_of(saved, state_path), root)
    differences = config_differences(saved["config"], fingerprint)
    if differences:
        raise ConfigError(
            f"{root} holds a {'supernet' if Path(state_path).name == SUPERNET_STATE_FILE else 'search'} made "
            f"with a different config ({'; '.join(differences)}); use another --workdir or the same config to resume")
    return saved


def check_resumable_workdir(config, workdir) -> None:
    """Both stages' resume files of a search in WORKDIR, checked before any slow work."""
    supernet_dir = supernet_path(config, workdir)  # first: a different supernet is the larger difference
    check_resumable(supernet_dir / SUPERNET_STATE_FILE, config_fingerprint(config, ignore=PER_BUDGET_KEYS),
                    supernet_dir)
    check_resumable(Path(workdir) / STATE_FILE, config_fingerprint(config, ignore=AFTER_SEARCH_KEYS), workdir)


def read_state(path, root=None):
    """A stage's state file (WORKDIR/search_state.json, SUPERNET/state.json); None if absent."""
    path = Path(path)
    return checkpoints.read_json(path, root or path.parent, keys=("epochs_done", "history", "config"))


def checkpoint_of(state, state_path) -> Path:
    """The checkpoint a state names (relative to its state file's folder)."""
    return Path(state_path).parent / state["checkpoint"]


def supernet_path(config, workdir) -> Path:
    """Where the trained supernet lives: search.supernet, else WORKDIR/supernet."""
    return Path(config.search.supernet or Path(workdir) / SUPERNET_DIR)


def fork_search(source, workdir) -> bool:
    """Starts WORKDIR as a copy of the search stage in SOURCE (its state file and the checkpoint that names), so
    that the same search is fine-tuned again under other AFTER_SEARCH_KEYS (another recipe) without searching again:
    WORKDIR then resumes like any search, after the epochs SOURCE did, and its selection reruns on the same
    checkpoint and supernet with the same seeds. A WORKDIR that already has a search state is left alone (False):
    it resumes or is reused like any workdir."""
    source, workdir = Path(source), Path(workdir)
    if (workdir / STATE_FILE).exists():
        return False
    saved = read_state(source / STATE_FILE, source)
    if saved is None:
        raise UdcError(f"{source} holds no search to fine-tune again; run its search first")
    if saved["epochs_done"]:
        checkpoint = checkpoint_of(saved, source / STATE_FILE)
        checkpoints.check_readable(checkpoint, source)
        copy_dir = workdir / Path(saved["checkpoint"]).parent
        copy_dir.mkdir(parents=True, exist_ok=True)
        for part in checkpoint.parent.glob(checkpoint.name + ".*"):
            shutil.copyfile(part, copy_dir / part.name)
    # The state file comes last and is written atomically: a fork interrupted before it is simply made again.
    write_json_atomic(workdir / STATE_FILE, saved)
    return True
