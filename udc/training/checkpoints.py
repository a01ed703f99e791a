"""Resume state on disk: a JSON state file that names the tf.train checkpoint it belongs to.

Writers save the checkpoint first and then replace the state atomically, so any reader
sees a state whose checkpoint exists (CheckpointManager keeps the previous one until the
next save). Readers restore the checkpoint the state names, never "the latest" of a
directory another writer may have touched. A state file or checkpoint that cannot be
read (truncated, empty, edited) is a one-line UdcError naming the file and the fix.
"""

import json
from pathlib import Path

from udc.compat import tf
from udc.errors import UdcError


def corrupt(path, reason, workdir) -> UdcError:
    reason = " ".join(str(reason).split())[:160]
    return UdcError(f"{path} is corrupt ({reason}); delete {workdir} to start over, or restore the file")


def read_json(path, workdir, keys=()):
    """The JSON object in `path` (None if there is none); UdcError if unreadable or lacking `keys`."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise corrupt(path, e, workdir) from None
    missing = [key for key in keys if not isinstance(state, dict) or key not in state]
    if missing:
        raise corrupt(path, f"no {', '.join(missing)}", workdir)
    return state


def check_readable(prefix, workdir) -> None:
    """Reads every tensor of the checkpoint at `prefix`: a truncated .index or .data file fails here."""
    if not Path(f"{prefix}.index").is_file():
        raise UdcError(f"checkpoint {prefix} is missing; delete {workdir} to start over, or restore the checkpoint")
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError) as e:  # IndexError: a truncated .data file
        raise corrupt(f"checkpoint {prefix}", e, workdir) from None


def restore(checkpoint, prefix, workdir, partial=False) -> None:
    """Restores `checkpoint` (a tf.train.Checkpoint) from exactly `prefix`; `partial`: the file may hold
    more objects than `checkpoint` tracks (a stage's model without its optimizer)."""
    check_readable(prefix, workdir)
    try:
        status = checkpoint.restore(str(prefix)).assert_existing_objects_matched()
        if partial:
            status.expect_partial()
    except (tf.errors.OpError, ValueError, AssertionError) as e:
        raise corrupt(f"checkpoint {prefix}", e, workdir) from None
