import numpy as np
import pytest

from udc.data import RawDataset, make_splits
from udc.deploy.model_io import save_model
from udc.errors import ConfigError, UdcError
from udc.fileio import write_json_atomic
from udc.search.settings import flat_config
from udc.workflows.baselines import FineTuning
from udc.workflows.benchmark import baseline_config, check_plan, reusable_point
from udc.workflows.pipeline import float_model

from search_helpers import digits_config


def test_plan_errors_name_the_fix():
    with pytest.raises(ConfigError, match="unknown recipe.*gzip.*choose from: ptq_int8"):
        check_plan(["ptq_int8", "gzip"], [12])
    with pytest.raises(ConfigError, match="budget list is empty"):
        check_plan(["ptq_int8"], [])
    with pytest.raises(ConfigError, match="positive"):
        check_plan(["ptq_int8"], [12, -1])
    with pytest.raises(ConfigError, match="listed twice"):
        check_plan(["ptq_int8"], [12, 12])
    check_plan(["ptq_int8", "pcqat_75_16"], [6, 12.5])


def test_a_float_model_of_another_dataset_is_refused(trained_digits_model, tmp_path):
    save_model(trained_digits_model, tmp_path / "float" / "model.keras")
    other = RawDataset("three_classes", np.zeros((20, 8, 8, 1), np.uint8), np.arange(20, dtype=np.int32) % 3,
                       np.zeros((5, 8, 8, 1), np.uint8), np.zeros(5, np.int32), 3)
    with pytest.raises(ConfigError, match="gives 10 classes.*3 classes.*fresh --workdir"):
        float_model(None, make_splits(other), tmp_path / "float" / "model.keras", print)


def test_a_point_is_reused_only_if_measured_with_the_same_config(tmp_path):
    path, lines = tmp_path / "points" / "udc_3kb.json", []
    measured = flat_config(digits_config())
    write_json_atomic(path, {"name": "udc_3kb", "accuracy": 0.9, "config": measured})
    assert reusable_point(path, measured, lines.append) == {"name": "udc_3kb", "accuracy": 0.9}
    assert lines == []
    longer = flat_config(digits_config(finetune_epochs=6))
    assert reusable_point(path, longer, lines.append) is None
    assert lines == [f"{path} was measured with another config (search.finetune_epochs: 2 -> 6); measuring it again"]
    write_json_atomic(path, {"name": "udc_3kb", "accuracy": 0.9})  # from before points recorded their config
    assert reusable_point(path, measured, lines.append) is None
    assert "does not record the config" in lines[-1]
    assert reusable_point(tmp_path / "points" / "absent.json", measured, lines.append) is None
    path.write_text("{")
    with pytest.raises(UdcError, match="udc_3kb.json is corrupt.*delete .*udc_3kb.json to start over"):
        reusable_point(path, measured, lines.append)


def test_a_baseline_depends_on_its_fine_tuning_and_not_on_the_search():
    made = baseline_config(digits_config(), FineTuning())
    assert baseline_config(digits_config(finetune_epochs=6, bits=(4, 8)), FineTuning()) == made
    assert baseline_config(digits_config(), FineTuning(epochs=3)) != made
    other_calibration = digits_config()
    other_calibration.export.num_calibration += 1
    assert baseline_config(other_calibration, FineTuning()) != made
    other_seed = digits_config()
    other_seed.seed += 1
    assert baseline_config(other_seed, FineTuning()) != made
