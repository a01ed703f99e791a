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


def silence_native_stderr():
    """Sends C-level stderr to /dev/null; Python's sys.stderr writes to a copy of the real one.

    Returns the function that puts both back (a binary run in-process, as in tests, must
    not leave the rest of the process silenced)."""
    sys.stderr.flush()
    real = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(real), "w", buffering=1, encoding=python_stderr.encoding,
                           errors="backslashreplace")

    def restore():
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = python_stderr
        os.dup2(real, 2)
        os.close(real)

    return restore


def _describe_binary_in_help(main) -> None:
    """`--help` shows the docstring of __main__ and the key flags of the module named by
    sys.argv[0] (absl): for a console script or `python -c` neither is the binary's module,
    so its docstring is lent to __main__ and its own flags and the shared ones
    (udc.cli.flags, this module) are registered for sys.argv[0]."""
    sys.modules["__main__"].__doc__ = sys.modules[main.__module__].__doc__
    for module in (main.__module__, "udc.cli.flags", __name__):
        for flag in flags.FLAGS.get_key_flags_for_module(module):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


# What a flag of each absl parser type takes, and a value to show when the flag has none.
_TAKES = {"int": ("an integer", "1"), "float": ("a number", "0.5"), "bool": ("True or False", "True"),
          "tuple": ("a tuple with commas between its entries", "'(1,2)'")}


def _example(value, fallback: str) -> str:
    if value is None:
        return fallback
    if isinstance(value, (list, tuple)):  # ml_collections shows a tuple field's value as a list
        return f"'{str(tuple(value)).replace(' ', '')}'"
    return str(value)


def _bad_flag_value(error: flags.Error) -> str:
    """absl's `flag --NAME=VALUE: REASON` as what NAME takes and an example of it."""
    match = re.match(r"flag --([^=\s]+)=(.*?): (.*)", str(error), re.DOTALL)
    if not match or match.group(1) not in flags.FLAGS:
        return f"{error}; see --help"
    name, value, reason = match.groups()
    if "must have a value other than None" in reason:  # flags.mark_flags_as_required
        return f"--{name} is required; see --help"
    flag = flags.FLAGS[name]
    if flag.parser.flag_type() not in _TAKES:
        return f"--{name}={value}: {reason}; see --help"
    takes, fallback = _TAKES[flag.parser.flag_type()]
    return f"--{name} takes {takes}, not {value!r}; e.g. --{name}={_example(flag.value, fallback)}"


def _unknown_config_key(error: Exception) -> str:
    overrides = [a for a in sys.argv[1:] if a.startswith("--config.")]
    key = re.search(r"'(\w+)", str(error))
    hint = re.search(r'Did you mean "(\w+)"', str(error))
    return (f"unknown config key '{key.group(1) if key else error}' in {' '.join(overrides)}"
            + (f"; did you mean '{hint.group(1)}'?" if hint else "; use a key the config file defines"))


def run_binary(binary: str, main) -> None:
    """app.run(main), with user errors printed as one line and exit status 1.

    Bad flags are user errors too, caught while absl parses them (its own report takes
    two lines): a value of the wrong type (`--config.train.epochs=abc`), a missing or
    unknown flag, and a `--config.key=` override whose key does not exist (ml_collections
    raises AttributeError/KeyError for that).
    """
    sys.stdout.reconfigure(line_buffering=True)
    restore_stderr = None if _verbose_requested() else silence_native_stderr()
    _describe_binary_in_help(main)

    def parse_flags(argv):
        try:
            return flags.FLAGS(argv)
        except flags.Error as e:
            fail(binary, _bad_flag_value(e))
        except (AttributeError, KeyError) as e:
            fail(binary, _unknown_config_key(e))

    def guarded_main(argv):
        if not flags.FLAGS["verbosity"].present:  # TF's INFO and WARNING chatter hides the progress lines
            logging.set_verbosity(logging.INFO if _VERBOSE.value else logging.ERROR)
        try:
            return main(argv)
        except UdcError as e:
            fail(binary, e)

    try:
        app.run(guarded_main, flags_parser=parse_flags)
    finally:
        if restore_stderr is not None:
            restore_stderr()


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
