"""A reader of dlib's binary serialisation format (the ``.dat`` files of dlib's DNN models).

Written from the format as dlib's ``serialize.h`` and ``cuda/tensor.h`` define it:

* a signed integer is one control byte, ``size | (0x80 if negative)`` with ``size`` in 1..8,
  followed by ``size`` little-endian bytes of the magnitude (zero is ``01 00``);
* a string is its length as such an integer, then the raw bytes;
* a float or double is a mantissa (int64) and an exponent (int16), value = m * 2**e, with
  exponents 32000..32002 meaning +inf, -inf and NaN;
* a bool is the ASCII byte ``'1'`` or ``'0'``;
* a tensor is version 2, then num_samples, k, nr, nc, then k*nr*nc*num_samples little-endian
  IEEE float32 values; an alias tensor is version 1 and the same four sizes, no data.

Every read checks bounds first, so a truncated or damaged file raises
:class:`~facesocial.models.convert.errors.ConversionError` naming the byte offset, never an
``IndexError``, a hang or an allocation the file cannot back.
"""

from __future__ import annotations

import math
import re

import numpy as np
import numpy.typing as npt

from .errors import ConversionError

# dlib's float_details marks infinities and NaN with these exponent values.
_EXP_INF, _EXP_NINF, _EXP_NAN = 32000, 32001, 32002
# Layer and loss names in dlib ("con_4", "affine_", "input_rgb_image_sized", "loss_metric_2").
_NAME = re.compile(rb"[a-z][a-z0-9_]{2,63}")


class DlibReader:
    """Sequential reader over the bytes of a dlib ``.dat`` file.

    Example::

        reader = DlibReader(path.read_bytes())
        version = reader.integer()      # e.g. 1 for add_loss_layer
        name = reader.string()          # e.g. "loss_metric_2"
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset

    def fail(self, message: str, at: int | None = None) -> ConversionError:
        """A ConversionError naming the byte offset (the current one by default)."""
        where = self.offset if at is None else at
        return ConversionError(f"dlib .dat, byte offset {where}: {message}")

    def _take(self, count: int, what: str) -> bytes:
        if count < 0 or count > self.remaining:
            raise self.fail(f"truncated file: {what} needs {count} bytes, {self.remaining} left")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def _int_at(self, offset: int) -> tuple[int, int] | None:
        """(value, bytes used) of a packed integer at ``offset``; None if it is not one."""
        if offset >= len(self.data):
            return None
        control = self.data[offset]
        size = control & 0x0F
        if control & 0x70 or size == 0 or size > 8 or offset + 1 + size > len(self.data):
            return None
        magnitude = int.from_bytes(self.data[offset + 1 : offset + 1 + size], "little")
        return (-magnitude if control & 0x80 else magnitude), 1 + size

    def integer(self, max_bytes: int = 8) -> int:
        """A packed signed integer of at most ``max_bytes`` bytes (8 = int64)."""
        start = self.offset
        parsed = self._int_at(start)
        if parsed is None:
            if start >= len(self.data):
                raise self.fail("truncated file: expected an integer at the end of the data")
            raise self.fail(f"not a packed integer (control byte 0x{self.data[start]:02x})")
        value, used = parsed
        if used - 1 > max_bytes:
            raise self.fail(f"integer of {used - 1} bytes where at most {max_bytes} are allowed")
        self.offset += used
        return value

    def count(self, what: str, limit: int = 1 << 31) -> int:
        """A non-negative size (a tensor dimension, a string length), at most ``limit``."""
        start = self.offset
        value = self.integer()
        if not 0 <= value <= limit:
            raise self.fail(f"{what} = {value} is outside 0..{limit}", at=start)
        return value

    def string(self) -> str:
        length = self.count("string length", limit=self.remaining)
        raw = self._take(length, "a string")
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise self.fail("a string that is not ASCII", at=self.offset - length) from exc

    def peek_name(self) -> str | None:
        """The layer/loss name that starts here, without consuming it; None if none does.

        Wrapper versions (small integers) and names are told apart by the bytes after the
        packed integer: a name is a lower-case identifier of exactly that length.
        """
        parsed = self._int_at(self.offset)
        if parsed is None:
            return None
        length, used = parsed
        start = self.offset + used
        raw = self.data[start : start + length] if length > 0 else b""
        if len(raw) == length and _NAME.fullmatch(raw):
            return raw.decode("ascii")
        return None

    def number(self) -> float:
        """A float/double in dlib's portable (mantissa, exponent) form."""
        start = self.offset
        if self.remaining and self.data[self.offset] & 0x70:
            raise self.fail("a float in dlib's pre-2013 ASCII form is not supported")
        mantissa = self.integer(max_bytes=8)
        exponent = self.integer(max_bytes=2)
        if exponent == _EXP_INF:
            return math.inf
        if exponent == _EXP_NINF:
            return -math.inf
        if exponent == _EXP_NAN:
            return math.nan
        try:
            return math.ldexp(float(mantissa), exponent)
        except OverflowError as exc:
            raise self.fail(f"float exponent {exponent} overflows", at=start) from exc

    def flag(self) -> bool:
        raw = self._take(1, "a bool")
        if raw == b"1":
            return True
        if raw == b"0":
            return False
        raise self.fail(f"a bool must be '0' or '1', found 0x{raw[0]:02x}", at=self.offset - 1)

    def _dims(self) -> tuple[int, int, int, int]:
        n, k, nr, nc = (self.count(f"tensor {axis}") for axis in ("num_samples", "k", "nr", "nc"))
        return n, k, nr, nc

    def tensor(self) -> npt.NDArray[np.float32]:
        """A dlib tensor as an (num_samples, k, nr, nc) float32 array (a copy)."""
        start = self.offset
        version = self.integer()
        if version != 2:
            raise self.fail(f"tensor version {version}, expected 2", at=start)
        dims = self._dims()
        size = dims[0] * dims[1] * dims[2] * dims[3]
        if size * 4 > self.remaining:
            raise self.fail(f"truncated file: a tensor of shape {dims} needs {size * 4} bytes")
        raw = self._take(size * 4, "tensor data")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        """The shape an alias tensor (a view into a layer's params) declares."""
        start = self.offset
        version = self.integer()
        if version != 1:
            raise self.fail(f"alias tensor version {version}, expected 1", at=start)
        return self._dims()
