"""What a cascade's members expect as input, and the check of a batch of images against it.

The members quantize float images with their input scale and clip whatever falls
outside the int8 range, so images on another scale (raw uint8 pixels, or [-1, 1])
run without any error and the cascade silently answers worse. The descriptor records
the dtype and value range of the images the thresholds were calibrated on, and
`Cascade.predict` refuses inputs that do not match them.
"""

import dataclasses

import numpy as np

from udc.errors import UdcError

# Other images of the same data may reach a little past the calibration images' range.
RANGE_TOLERANCE = 0.05  # of the range's width


class InputMismatchError(UdcError):
    pass


def _kind(dtype) -> str:
    return "float" if np.issubdtype(dtype, np.floating) else "integer"


@dataclasses.dataclass(frozen=True)
class InputSpec:
    dtype: str  # numpy name of the images' dtype, e.g. float32
    low: float
    high: float

    @classmethod
    def of_images(cls, images) -> "InputSpec":
        images = np.asarray(images)
        return cls(images.dtype.name, float(images.min()), float(images.max()))

    def as_dict(self) -> dict:
        return {"dtype": self.dtype, "range": [self.low, self.high]}

    def __str__(self) -> str:
        return f"{self.dtype} in [{self.low:.3g}, {self.high:.3g}]"

    def check(self, images: np.ndarray) -> None:
        """Raises InputMismatchError unless `images` have this dtype kind and lie in this range."""
        if images.size == 0:
            return
        if not np.issubdtype(images.dtype, np.number) or np.issubdtype(images.dtype, np.complexfloating):
            raise InputMismatchError(f"inputs are {images.dtype} but the members expect {self}; "
                                     "give images as a numeric NHWC array")
        if not np.all(np.isfinite(images)):
            raise InputMismatchError(f"inputs contain NaN or infinite values but the members expect {self}; "
                                     "remove or repair those images")
        given = InputSpec(images.dtype.name, float(images.min()), float(images.max()))
        slack = RANGE_TOLERANCE * (self.high - self.low)
        in_range = self.low - slack <= given.low and given.high <= self.high + slack
        if in_range and _kind(images.dtype) == _kind(self.dtype):
            return
        if in_range:
            fix = f"convert them to {self.dtype}"
        elif 0 <= self.low and self.high <= 1 + slack and 0 <= given.low and given.high <= 255:
            fix = "scale them as the training data was (x / 255)"
        else:
            fix = f"scale them into [{self.low:.3g}, {self.high:.3g}] as the training data was"
        raise InputMismatchError(f"inputs are {given} but the members expect {self}; {fix}")
