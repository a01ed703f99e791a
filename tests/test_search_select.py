"""Selection without training: repair shrinks an over-budget choice, fill grows an under-budget one."""

import numpy as np
import pytest

from udc.compat import keras
from udc.search.selection import Limit, Sizes, fill, repair
from udc.space import SearchOptions
from udc.space.children import choices_of
from udc.space.supernet import fmnist_supernet
from udc.targets import get_target

TARGET = get_target("ethos-u55-128")


@pytest.fixture(scope="module")
def sizes():
    keras.utils.set_random_seed(0)
    model = fmnist_supernet((8, 8, 1), 10, SearchOptions(), widths=(16, 16, 32, 32, 32))
    sizes = Sizes(model, TARGET)
    sizes.calibrate()
    rng = np.random.default_rng(0)
    for layer in sizes.layers:
        for v in layer.architecture_variables():
            v.assign(rng.normal(size=v.shape).astype(np.float32))
    return sizes


def test_repair_fits_the_limit_with_single_steps(sizes):
    start = choices_of(sizes.supernet)
    largest = {name: {"width": l.widths[-1], "sparsity": 0.0, "bits": 8}
               for name, l in ((l.name, l) for l in sizes.layers)}
    limit = sizes.exact(largest) // 3
    lines = []
    repaired = repair([Limit(sizes, limit, "B")], largest, lines.append)
    assert sizes.exact(repaired) <= limit and lines
    assert all("saves" in line for line in lines)
    with pytest.raises(Exception, match="smallest choices still take"):
        repair([Limit(sizes, 10, "B")], largest, lambda _: None)
    assert choices_of(sizes.supernet) == start  # the logits are only read


def test_fill_grows_a_small_choice_up_to_the_limit(sizes):
    smallest = sizes.smallest_choices()
    low = sizes.exact(smallest)
    limit = low + 3000
    lines = []
    filled = fill([Limit(sizes, limit, "B")], smallest, lines.append)
    total = sizes.exact(filled)
    assert low < total <= limit and "fill:" in lines[0]
    # No single further move fits: the budget is used up to the size of the next step.
    grown = fill([Limit(sizes, limit, "B")], filled, lines.append)
    assert grown == filled


class _ChannelCount:
    """A second cost for the tests: the sum of the chosen widths."""

    def __init__(self, layers):
        self.layers = layers

    def exact(self, choices) -> int:
        return sum(choices[layer.name]["width"] for layer in self.layers)


def test_repair_and_fill_keep_every_cost_within_its_limit(sizes):
    largest = {l.name: {"width": l.widths[-1], "sparsity": 0.0, "bits": 8} for l in sizes.layers}
    channels = _ChannelCount(sizes.layers)
    # Bytes alone would be met by fewer bits; the channel limit needs narrower layers too.
    limits = [Limit(sizes, sizes.exact(largest) // 2, "B"), Limit(channels, channels.exact(largest) - 24, "channels")]
    lines = []
    repaired = repair(limits, largest, lines.append)
    assert all(l.cost.exact(repaired) <= l.limit for l in limits)
    assert all("saves" in line and "channels" in line for line in lines)
    filled = fill(limits, repaired, lines.append)
    assert all(l.cost.exact(filled) <= l.limit for l in limits)
    bytes_only = fill(limits[:1], repaired, lambda _: None)
    assert channels.exact(bytes_only) >= channels.exact(filled)  # the channel limit held the fill back


def test_a_state_saved_before_the_cycle_budget_existed_resumes_without_one():
    from udc.search.settings import config_differences

    saved = {"budget_kb": 8.0, "search.budget_kb": 8.0}
    assert config_differences(saved, {**saved, "budget_cycles": 0, "search.budget_cycles": 0}) == []
    assert config_differences(saved, {**saved, "budget_cycles": 90000, "search.budget_cycles": 90000}) == [
        "budget_cycles: 0 -> 90000", "search.budget_cycles: 0 -> 90000"]


def test_a_cycle_budget_missed_by_vela_selects_again_aiming_lower_by_the_miss():
    """udc.workflows.pipeline.ship_reselecting on a stand-in search: the first export is 20 % over its
    estimate, so the cycle target falls by that share and the child selected under it ships; a miss
    every time is given up after MAX_CYCLE_RESELECTIONS with the miss's own one-line error."""
    import types

    from udc.deploy.ship import CycleBudgetMissed
    from udc.workflows.pipeline import MAX_CYCLE_RESELECTIONS, ship_reselecting

    search = types.SimpleNamespace(target_cycles=1000.0)
    search.select = lambda: {"limit": search.target_cycles}
    shipped, lines = [], []

    def ship(choices, reselections):
        shipped.append(choices["limit"])
        if len(shipped) == 1:
            raise CycleBudgetMissed("over", vela_cycles=1200, estimated_cycles=1000)
        return {"reselections": list(reselections)}

    report = ship_reselecting(search, ship, log=lines.append)
    assert shipped == [1000.0, pytest.approx(1000.0 / 1.2)]
    assert report["reselections"] == [{"vela_cycles": 1200, "estimated_cycles": 1000, "new_limit_cycles": 833}]
    assert lines == ["Vela measures 1,200 cycles, the estimate was 1,000: selecting again under 833 estimated cycles"]

    def always_over(choices, reselections):
        raise CycleBudgetMissed("Vela measures 1,200 cycles > budget_cycles", 1200, 1000)

    with pytest.raises(CycleBudgetMissed, match="Vela measures 1,200 cycles > budget_cycles"):
        ship_reselecting(types.SimpleNamespace(target_cycles=1000.0, select=lambda: {}), always_over, log=lines.append)
    assert len(lines) == 1 + MAX_CYCLE_RESELECTIONS
