"""The batch sizes, epoch and step counts of a config, checked before anything slow runs.

Light on purpose (no TensorFlow import): the binaries check a config's counts before they
import the pipeline, so a bad count is refused in a fraction of a second, not after
TensorFlow's start-up.
"""

from udc.errors import ConfigError

# The counts of each section: (key, smallest allowed value, what 0 means if allowed).
TRAINING_COUNTS = {
    "train": (("batch_size", 1, None), ("epochs", 1, None)),
    "search": (("batch_size", 1, None), ("steps_per_epoch", 0, "the whole training split"),
               ("supernet_epochs", 0, "no supernet training"), ("search_epochs", 0, "no search epochs"),
               ("finetune_epochs", 0, "no fine-tuning")),
}


def check_counts(config, section) -> None:
    """ConfigError naming the flag unless every batch size, epoch and step count of `section` is a whole
    number in range (checked before anything is written to the workdir)."""
    for key, smallest, zero_means in TRAINING_COUNTS[section]:
        value = config[section][key]
        if isinstance(value, int) and not isinstance(value, bool) and value >= smallest:
            continue
        allowed = (f"0 ({zero_means}) or a positive whole number" if smallest == 0 else "a positive whole number")
        raise ConfigError(f"--config.{section}.{key} must be {allowed}, got {value!r}; "
                          f"set --config.{section}.{key}")
