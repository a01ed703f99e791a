"""Training of the float backbone, with per-epoch progress and resumable checkpoints."""

from pathlib import Path

from udc import data as udc_data
from udc.compat import keras, tf
from udc.models import build_backbone
from udc.training import checkpoints
from udc.training.batch_norm import reestimate_model_statistics
from udc.training.progress import keras_verbosity


def compile_for_training(model, learning_rate: float):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def keras_accuracy(model, split, batch_size: int = 256) -> float:
    logits = model.predict(split.x, batch_size=batch_size, verbose=0)
    return float((logits.argmax(axis=1) == split.y).mean())


def train_float_model(config, splits: udc_data.Splits, workdir, widths=None) -> keras.Model:
    """Trains `config.backbone` on the training split, validating each epoch.

    `widths` overrides the backbone's own (a search's float model has the widths of its
    supernet, `search.max_widths`). Its BatchNorm statistics are re-estimated after training
    (`udc.training.batch_norm`). An interrupted run resumes from the last finished epoch (Keras BackupAndRestore
    in `workdir/backup`), so a long run loses at most one epoch.
    """
    backup = Path(workdir) / "backup"
    check_backup_readable(backup, workdir)
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    model = build_backbone(config.backbone, splits.input_shape, splits.num_classes,
                           **({"widths": tuple(widths)} if widths else {}))
    compile_for_training(model, config.train.learning_rate)
    callbacks = [keras.callbacks.BackupAndRestore(str(backup))]
    model.fit(
        splits.train.tf_dataset(config.train.batch_size, shuffle=True, seed=config.seed),
        validation_data=splits.val.tf_dataset(256) if len(splits.val) else None,
        epochs=config.train.epochs,
        callbacks=callbacks,
        verbose=keras_verbosity(),
    )
    # The moving statistics lag where the weights still move fast (the float ds_cnn on a small keyword set lost
    # half its accuracy to them): the average of training batches' statistics replaces them.
    reestimate_model_statistics(model, splits.train, config.train.batch_size)
    return model


def check_backup_readable(backup, workdir) -> None:
    """UdcError naming the file if the checkpoint BackupAndRestore would resume from is corrupt
    (keras would fail with a traceback deep inside fit)."""
    latest = tf.train.latest_checkpoint(str(backup / "chief")) if (backup / "chief").is_dir() else None
    if latest is not None:
        checkpoints.check_readable(latest, workdir)
