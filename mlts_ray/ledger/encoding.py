"""The one canonical byte encoding of every ledger object.

Rules (so that every object has exactly one encoding and decoding is total):
- an object starts with its type tag (u8) and format version (u8);
- integers are fixed-width big-endian (u8, u32, u64, or two's-complement i64);
- strings are UTF-8 with a u16 length, byte strings a u32 length, fixed-size hashes/keys raw;
- lists are a u32 count followed by the items;
- no floats anywhere (money in integer cents, energy in integer Wh), no pickle;
- a decoder consumes the whole input: trailing bytes are an error.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import TypeVar

from mlts_ray.errors import EncodingError

T = TypeVar("T")

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")


class Writer:
    """Appends canonical fields; ``value()`` returns the bytes."""

    __slots__ = ("_parts",)

    def __init__(self, tag: int, version: int) -> None:
        self._parts: list[bytes] = [bytes((tag, version))]

    def u8(self, v: int) -> Writer:
        self._parts.append(bytes((v,)))
        return self

    def u32(self, v: int) -> Writer:
        self._parts.append(_U32.pack(v))
        return self

    def u64(self, v: int) -> Writer:
        self._parts.append(_U64.pack(v))
        return self

    def i64(self, v: int) -> Writer:
        self._parts.append(_I64.pack(v))
        return self

    def fixed(self, v: bytes, size: int) -> Writer:
        if len(v) != size:
            raise EncodingError("field", f"expected {size} bytes, got {len(v)}")
        self._parts.append(v)
        return self

    def blob(self, v: bytes) -> Writer:
        self._parts.append(_U32.pack(len(v)))
        self._parts.append(v)
        return self

    def text(self, v: str) -> Writer:
        b = v.encode()
        self._parts.append(_U16.pack(len(b)))
        self._parts.append(b)
        return self

    def items(self, values: Iterable[T], put: Callable[[Writer, T], object]) -> Writer:
        values = list(values)
        self._parts.append(_U32.pack(len(values)))
        for v in values:
            put(self, v)
        return self

    def value(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Reads canonical fields back; every failure is an EncodingError naming ``what``."""

    __slots__ = ("_data", "_pos", "what")

    def __init__(self, data: bytes, what: str, tag: int, version: int) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise EncodingError(what, f"expected bytes, got {type(data).__name__}")
        self._data = bytes(data)
        self._pos = 0
        self.what = what
        got_tag, got_version = self.u8(), self.u8()
        if got_tag != tag:
            raise EncodingError(what, f"type tag {got_tag} where {tag} was expected")
        if got_version != version:
            raise EncodingError(what, f"unsupported format version {got_version}")

    def _take(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise EncodingError(self.what, f"truncated at byte {self._pos} (needs {n} more)")
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def u8(self) -> int:
        return self._take(1)[0]

    def u32(self) -> int:
        return _U32.unpack(self._take(4))[0]

    def u64(self) -> int:
        return _U64.unpack(self._take(8))[0]

    def i64(self) -> int:
        return _I64.unpack(self._take(8))[0]

    def fixed(self, size: int) -> bytes:
        return self._take(size)

    def blob(self) -> bytes:
        return self._take(self.u32())

    def text(self) -> str:
        raw = self._take(_U16.unpack(self._take(2))[0])
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise EncodingError(self.what, "string field is not valid UTF-8") from None

    def items(self, get: Callable[[Reader], T]) -> list[T]:
        count = self.u32()
        if count > len(self._data) - self._pos:  # every item takes at least one byte
            raise EncodingError(self.what, f"list claims {count} items, too many for its bytes")
        return [get(self) for _ in range(count)]

    def done(self) -> None:
        if self._pos != len(self._data):
            raise EncodingError(self.what, f"{len(self._data) - self._pos} trailing bytes")
