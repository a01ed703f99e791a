"""User-facing errors: one line that names the problem and the fix.

Command-line binaries print these without a traceback and exit non-zero; anything
else is a bug and keeps its traceback.
"""


class UdcError(Exception):
    """A problem with the user's input or environment, with the fix in the message."""


class DatasetNotFoundError(UdcError):
    pass


class BadDatasetError(UdcError):
    """A dataset file is damaged, or its arrays do not fit together (counts, labels, shapes)."""


class UnknownTargetError(UdcError):
    pass


class NotATfliteFileError(UdcError):
    pass


class NotInt8ModelError(UdcError):
    """A .tflite that is not full-integer int8 (float or dynamic-range): udc's measures would be wrong."""


class OutputNotWritableError(UdcError):
    pass


class ConfigError(UdcError):
    pass
