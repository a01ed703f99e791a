"""The steps the binaries chain, driven by a config: train the backbone, export it."""

from udc.data import load_splits
from udc.export import export_model
from udc.fileio import ensure_writable_dir
from udc.hardware import resolve_target
from udc.model_io import save_model
from udc.train import train_float_model


def target_of(config, accelerator=None):
    """The Vela target of a config (an explicit accelerator name wins)."""
    return resolve_target(accelerator or config.export.accelerator, config.export.system_config,
                          config.export.memory_mode)


def train_and_save(config, workdir, log=print):
    """Trains the config's backbone (resuming an interrupted run) into WORKDIR/model.keras."""
    workdir = ensure_writable_dir(workdir)
    splits = load_splits(config)
    log(f"training {config.backbone} on {splits.name}: {len(splits.train)} train, "
        f"{len(splits.val)} validation, {len(splits.test)} test images")
    model = train_float_model(config, splits, workdir)
    log(f"saved {save_model(model, workdir / 'model.keras')}")
    return model, splits


def export_from_config(model, splits, config, output_dir, name="model", accelerator=None, log=print):
    return export_model(model, splits, target_of(config, accelerator), output_dir, name=name,
                        config=config, num_calibration=config.export.num_calibration,
                        tflm_samples=config.export.tflm_samples, log=log)
