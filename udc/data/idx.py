"""Reader for the IDX format of (Fashion-)MNIST, plain or gzip-compressed.

A damaged file raises `IdxFormatError` naming the file and what is wrong with it
(truncated, not IDX, wrong number of dimensions); the caller adds how to get a good copy.
"""

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IdxFormatError(ValueError):
    """The file is not a complete IDX file of the expected shape."""


def _contents(path: Path) -> tuple[bytes, bool]:
    """The (decompressed) bytes of `path` and whether its gzip stream reached its end marker.

    zlib rather than gzip.open: a truncated .gz then gives back what it holds, so the
    error can say how much is missing instead of gzip's EOFError.
    """
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise IdxFormatError(f"{path} cannot be read ({e.strerror})") from None
    if path.suffix != ".gz":
        return raw, True
    stream = zlib.decompressobj(16 + zlib.MAX_WBITS)  # 16: gzip header and trailer
    try:
        data = stream.decompress(raw)
    except zlib.error as e:
        raise IdxFormatError(f"{path} is not a valid gzip file ({e})") from None
    return data, stream.eof


def read_idx(path, ndim=None) -> np.ndarray:
    """The array in the IDX file `path`; `ndim`, if given, is the number of dimensions it must have."""
    path = Path(path)
    data, complete = _contents(path)
    if len(data) >= 4 and (data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES):
        raise IdxFormatError(f"{path} is not an IDX file (bad magic number)")
    header_size = 4 + 4 * data[3] if len(data) >= 4 else 4
    if len(data) < header_size:
        raise IdxFormatError(f"{path} is truncated ({len(data)} bytes, shorter than its IDX header)")
    shape = struct.unpack(f">{data[3]}I", data[4:header_size])
    dtype = np.dtype(_DTYPES[data[2]])
    expected = header_size + int(np.prod(shape)) * dtype.itemsize
    if len(data) < expected:
        raise IdxFormatError(f"{path} is truncated ({len(data)} of {expected} bytes"
                             f"{' once decompressed' if path.suffix == '.gz' else ''})")
    if not complete:
        raise IdxFormatError(f"{path} is truncated (its gzip stream lacks its end)")
    if len(data) > expected:
        raise IdxFormatError(f"{path} is longer than its IDX header says ({len(data)} instead of {expected} bytes)")
    if ndim is not None and len(shape) != ndim:
        raise IdxFormatError(f"{path} holds a {len(shape)}-dimensional array {shape}, "
                             f"expected {ndim} dimensions (is it the right file?)")
    return np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)


def write_idx(path, array: np.ndarray) -> None:
    """Writes a uint8 array as IDX (gzip when the name ends in .gz); used for fixtures."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())
