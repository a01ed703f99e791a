"""How the supernet trains: warm start from the float model, exact children every step (issue 10)."""

from search_helpers import digits_config
from udc.pipeline import search_and_export
from udc.search import read_state


def test_the_argmax_child_learns_and_the_warm_start_is_used(tmp_path):
    config = digits_config(warmup_epochs=1, search_epochs=3, steps_per_epoch=20)
    lines = []
    search_and_export(config, tmp_path, log=lines.append, export=False)
    assert any(line.startswith("warm start from the float model") for line in lines)
    assert (tmp_path / "float" / "model.keras").is_file()  # trained once, beside the search
    history = read_state(tmp_path)["history"]
    argmax = [h["val_accuracy"] for h in history]
    largest = [h["val_accuracy_largest"] for h in history]
    assert largest[0] >= 0.85  # it started as the trained float model
    assert argmax[-1] > argmax[0] + 0.2, argmax  # seen here: 15 % -> 58 % in three short epochs
