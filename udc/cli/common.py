"""What every udc binary shares: absl start-up, one-line user errors, config loading, quiet output.

A normal run prints udc's own lines only:

* stdout is line-buffered, so progress reaches a pipe or a file as it happens (Python
  block-buffers a stdout that is not a terminal, and a killed run would lose it all);
* TensorFlow 2.21 writes its start-up lines (oneDNN, CUDA, cpu_feature_guard, cuInit,
  NodeDef) from C++ straight to file descriptor 2, before and regardless of
  TF_CPP_MIN_LOG_LEVEL. File descriptor 2 goes to /dev/null and Python's `sys.stderr`
  keeps a copy of the real one, so udc's error lines and Python tracebacks still show.
  `--verbose` (or UDC_VERBOSE=1) keeps everything, TensorFlow's INFO logging included.
"""

import os
import re
import sys

from absl import app, flags, logging

from udc.errors import ConfigError, UdcError

_VERBOSE = flags.DEFINE_bool(
    "verbose", False, "Show TensorFlow's own log lines and warnings (also: UDC_VERBOSE=1).")


def fail(binary: str, message) -> None:
    one_line = " ".join(str(message).split())
    print(f"{binary}: error: {one_line}", file=sys.stderr, flush=True)
    sys.exit(1)


def _verbose_requested() -> bool:
    """--verbose, read before absl parses the flags: the redirect must precede TensorFlow's import."""
    return os.environ.get("UDC_VERBOSE", "") not in ("", "0") or any(
        arg in ("--verbose", "--verbose=true", "--verbose=True", "--verbose=1") for arg in sys.argv[1:])


def _silence_native_stderr() -> None:
    """Sends C-level stderr to /dev/null; Python's sys.stderr writes to a copy of the real one."""
    sys.stderr.flush()
    real = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(real, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")


def _describe_binary_in_help(main) -> None:
    """`--help` shows the docstring of __main__ and the key flags of the module named by
    sys.argv[0] (absl): for a console script or `python -c` neither is the binary's module,
    so its docstring is lent to __main__ and its own flags and the shared ones
    (udc.cli.flags, this module) are registered for sys.argv[0]."""
    sys.modules["__main__"].__doc__ = sys.modules[main.__module__].__doc__
    for module in (main.__module__, "udc.cli.flags", __name__):
        for flag in flags.FLAGS.get_key_flags_for_module(module):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def run_binary(binary: str, main) -> None:
    """app.run(main), with user errors printed as one line and exit status 1.

    ml_collections raises AttributeError/KeyError while absl parses a `--config.key=`
    override whose key does not exist; that is a user error too.
    """
    sys.stdout.reconfigure(line_buffering=True)
    if not _verbose_requested():
        _silence_native_stderr()
    _describe_binary_in_help(main)
    started = False

    def guarded_main(argv):
        nonlocal started
        started = True
        if not flags.FLAGS["verbosity"].present:  # TF's INFO and WARNING chatter hides the progress lines
            logging.set_verbosity(logging.INFO if _VERBOSE.value else logging.ERROR)
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
