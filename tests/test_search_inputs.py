"""Bad input to udc-search: infeasible budgets and option lists, each a one-line error before training."""

import pytest

from search_helpers import digits_config
from cli_helpers import DIGITS, assert_user_error, udc
from udc.errors import ConfigError
from udc.search.settings import budget_bytes, search_options


def test_infeasible_budget_is_rejected_before_training_with_the_minimum(tmp_path):
    result = udc("search", f"--config={DIGITS}", "--config.budget_kb=0.1", "--config.accelerator=ethos-u55-128",
                 f"--workdir={tmp_path}")
    assert_user_error(result, "budget 0.1 KiB (102 B) is below the smallest network this search space allows",
                      "raise --config.budget_kb to at least")
    assert "epoch 1" not in result.stdout and not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("key, value, match", [
    ("sparsities", (), "sparsity list is empty"),
    ("bits", (8, 4), "not strictly increasing"),
    ("bits", (4, 16), "integers from 2 to 8"),
    ("sparsities", (0.0, 1.0), r"fractions in \[0, 1\)"),
    ("widths", (8, 16, 32), "multiple of the target's channel alignment 16"),  # on ethos-u65-512
])
def test_bad_option_lists(key, value, match):
    config = digits_config(**{key: value})
    config.accelerator = "ethos-u65-512"
    with pytest.raises(ConfigError, match=match) as info:
        search_options(config)
    assert "\n" not in str(info.value)


def test_budget_must_be_positive_and_top_level_keys_are_the_search_and_export_keys():
    config = digits_config()
    config.budget_kb = 12
    config.accelerator = "ethos-u65-256"
    assert config.search.budget_kb == 12 and config.export.accelerator == "ethos-u65-256"
    assert budget_bytes(config) == 12 * 1024
    config.search.budget_kb = 0.0
    with pytest.raises(ConfigError, match="budget_kb must be a positive"):
        budget_bytes(config)
