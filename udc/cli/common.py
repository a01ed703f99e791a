"""What every udc binary shares: absl start-up, one-line user errors, config loading."""

import re
import sys

from absl import app, flags, logging

from udc.errors import ConfigError, UdcError


def fail(binary: str, message) -> None:
    one_line = " ".join(str(message).split())
    print(f"{binary}: error: {one_line}", file=sys.stderr)
    sys.exit(1)


def run_binary(binary: str, main) -> None:
    """app.run(main), with user errors printed as one line and exit status 1.

    ml_collections raises AttributeError/KeyError while absl parses a `--config.key=`
    override whose key does not exist; that is a user error too.
    """
    started = False

    def guarded_main(argv):
        nonlocal started
        started = True
        if not flags.FLAGS["verbosity"].present:  # TF's INFO chatter hides the progress lines
            logging.set_verbosity(logging.WARNING)
        try:
            return main(argv)
        except UdcError as e:
            fail(binary, e)

    try:
        app.run(guarded_main)
    except (AttributeError, KeyError) as e:
        if started:
            raise
        overrides = [a for a in sys.argv[1:] if a.startswith("--config.")]
        key = re.search(r"'(\w+)", str(e))
        hint = re.search(r'Did you mean "(\w+)"', str(e))
        fail(binary, f"unknown config key '{key.group(1) if key else e}' in {' '.join(overrides)}"
                     + (f"; did you mean '{hint.group(1)}'?" if hint else "; use a key the config file defines"))


def loaded_config(config_flag):
    """The config of a DEFINE_config_file flag, or a ConfigError naming the problem."""
    import ml_collections

    config = config_flag.value
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(
            f"cannot load the config file given by --config ({object.__getattribute__(config, '_error')}); "
            "pass a path such as --config=configs/fashion_mnist.py"
        )
    return config
