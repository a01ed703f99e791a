import numpy as np
import pytest

from udc.data import RawDataset, make_splits
from udc.deploy.model_io import save_model
from udc.errors import ConfigError
from udc.workflows.benchmark import check_plan
from udc.workflows.pipeline import float_model


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
