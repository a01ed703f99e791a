"""Training of the float backbone, with per-epoch progress and resumable checkpoints."""

from pathlib import Path

from udc import data as udc_data
from udc.compat import keras, tf
from udc.models import build_backbone


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


def train_float_model(config, splits: udc_data.Splits, workdir) -> keras.Model:
    """Trains `config.backbone` on the training split, validating each epoch.

    An interrupted run resumes from the last finished epoch (Keras BackupAndRestore
    in `workdir/backup`), so a long run loses at most one epoch.
    """
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    model = build_backbone(config.backbone, splits.input_shape, splits.num_classes)
    compile_for_training(model, config.train.learning_rate)
    callbacks = [keras.callbacks.BackupAndRestore(str(Path(workdir) / "backup"))]
    model.fit(
        splits.train.tf_dataset(config.train.batch_size, shuffle=True, seed=config.seed),
        validation_data=splits.val.tf_dataset(256) if len(splits.val) else None,
        epochs=config.train.epochs,
        callbacks=callbacks,
        verbose=2,
    )
    return model
