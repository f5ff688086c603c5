# SPDX-License-Identifier: LGPL-2.1-or-later
"""PackStream v1 codec for the Backplane Bolt test server (stdlib only).

Python value mapping:
  None <-> Null (C0)          bool <-> Boolean (C2/C3)
  int  <-> Integer (signed 64 bit, minimal marker chosen on encode)
  float <-> Float (C1, IEEE-754 double)
  str  <-> String (UTF-8)     bytes/bytearray/memoryview -> Bytes (decoded as bytes)
  list/tuple <-> List         dict (str keys) <-> Dictionary
  Structure(tag, fields) <-> Structure (B0..BF)

The codec knows nothing about Bolt graph types: those are Structures whose
meaning lives in boltserver.py.
"""

import struct

__all__ = ["Structure", "PackStreamError", "pack", "packb", "Unpacker", "unpackb",
           "encode_int"]

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


class PackStreamError(ValueError):
    """Raised on values that cannot be encoded or bytes that cannot be decoded."""


class Structure:
    """A PackStream structure: a tag byte and a list of fields."""

    __slots__ = ("tag", "fields")

    def __init__(self, tag, fields):
        if not 0 <= tag <= 0xFF:
            raise PackStreamError("structure tag out of range: %r" % (tag,))
        self.tag = tag
        self.fields = list(fields)

    def __eq__(self, other):
        return (isinstance(other, Structure) and self.tag == other.tag
                and self.fields == other.fields)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash((self.tag, len(self.fields)))

    def __repr__(self):
        return "Structure(0x%02X, %r)" % (self.tag, self.fields)


_pack_B = struct.Struct(">B").pack
_pack_BB = struct.Struct(">BB").pack
_pack_Bb = struct.Struct(">Bb").pack
_pack_Bh = struct.Struct(">Bh").pack
_pack_Bi = struct.Struct(">Bi").pack
_pack_Bq = struct.Struct(">Bq").pack
_pack_BH = struct.Struct(">BH").pack
_pack_BI = struct.Struct(">BI").pack
_pack_Bd = struct.Struct(">Bd").pack

# Pre-encoded tiny ints and small ints: the record streaming fast path.
_TINY = {}
for _i in range(-16, 128):
    _TINY[_i] = bytes([_i & 0xFF])


def encode_int(v):
    """Return the minimal PackStream encoding of the integer v."""
    b = _TINY.get(v)
    if b is not None:
        return b
    if -0x80 <= v < 0x80:
        return _pack_Bb(0xC8, v)
    if -0x8000 <= v < 0x8000:
        return _pack_Bh(0xC9, v)
    if -0x80000000 <= v < 0x80000000:
        return _pack_Bi(0xCA, v)
    if INT64_MIN <= v <= INT64_MAX:
        return _pack_Bq(0xCB, v)
    raise PackStreamError("integer out of 64-bit range: %d" % v)


def _size_header(out, n, tiny_base, m8, m16, m32, what):
    if n < 0x10 and tiny_base is not None:
        out.append(tiny_base + n)
    elif n < 0x100:
        out += _pack_BB(m8, n)
    elif n < 0x10000:
        out += _pack_BH(m16, n)
    elif n <= 0x7FFFFFFF:
        out += _pack_BI(m32, n)
    else:
        raise PackStreamError("%s too large: %d" % (what, n))


def pack(value, out):
    """Append the encoding of value to the bytearray out."""
    t = type(value)
    if value is None:
        out.append(0xC0)
    elif value is True:
        out.append(0xC3)
    elif value is False:
        out.append(0xC2)
    elif t is int:
        out += encode_int(value)
    elif t is float:
        out += _pack_Bd(0xC1, value)
    elif t is str:
        data = value.encode("utf-8")
        n = len(data)
        if n < 0x10:
            out.append(0x80 + n)
        else:
            _size_header(out, n, None, 0xD0, 0xD1, 0xD2, "string")
        out += data
    elif t is list or t is tuple:
        n = len(value)
        if n < 0x10:
            out.append(0x90 + n)
        else:
            _size_header(out, n, None, 0xD4, 0xD5, 0xD6, "list")
        for item in value:
            pack(item, out)
    elif t is dict:
        n = len(value)
        if n < 0x10:
            out.append(0xA0 + n)
        else:
            _size_header(out, n, None, 0xD8, 0xD9, 0xDA, "dictionary")
        for k, v in value.items():
            if type(k) is not str:
                raise PackStreamError("dictionary key must be a string: %r" % (k,))
            pack(k, out)
            pack(v, out)
    elif t is Structure:
        n = len(value.fields)
        if n > 15:
            raise PackStreamError("structure has too many fields: %d" % n)
        out.append(0xB0 + n)
        out.append(value.tag)
        for f in value.fields:
            pack(f, out)
    elif t is bytes or t is bytearray or t is memoryview:
        data = bytes(value)
        n = len(data)
        if n < 0x100:
            out += _pack_BB(0xCC, n)
        elif n < 0x10000:
            out += _pack_BH(0xCD, n)
        elif n <= 0x7FFFFFFF:
            out += _pack_BI(0xCE, n)
        else:
            raise PackStreamError("bytes too large: %d" % n)
        out += data
    elif isinstance(value, bool):  # pragma: no cover - bool subclasses are odd
        out.append(0xC3 if value else 0xC2)
    elif isinstance(value, int):
        out += encode_int(int(value))
    elif isinstance(value, float):
        out += _pack_Bd(0xC1, float(value))
    elif isinstance(value, str):
        pack(str(value), out)
    elif isinstance(value, (list, tuple)):
        pack(list(value), out)
    elif isinstance(value, dict):
        pack(dict(value), out)
    elif isinstance(value, Structure):
        pack(Structure(value.tag, value.fields), out)
    else:
        raise PackStreamError("cannot encode value of type %s" % t.__name__)


def packb(*values):
    """Encode values one after another and return bytes."""
    out = bytearray()
    for v in values:
        pack(v, out)
    return bytes(out)


_unpack_b = struct.Struct(">b").unpack_from
_unpack_h = struct.Struct(">h").unpack_from
_unpack_i = struct.Struct(">i").unpack_from
_unpack_q = struct.Struct(">q").unpack_from
_unpack_H = struct.Struct(">H").unpack_from
_unpack_I = struct.Struct(">I").unpack_from
_unpack_d = struct.Struct(">d").unpack_from


class Unpacker:
    """Decode PackStream values from a bytes-like object.

    max_depth bounds nesting (lists, dictionaries, structures) so hostile
    input cannot exhaust the Python stack.
    """

    def __init__(self, data, max_depth=64):
        self.data = bytes(data)
        self.pos = 0
        self.max_depth = max_depth

    def remaining(self):
        return len(self.data) - self.pos

    def _take(self, n):
        p = self.pos
        if n < 0 or p + n > len(self.data):
            raise PackStreamError("truncated data: need %d bytes at offset %d" % (n, p))
        self.pos = p + n
        return p

    def _u8(self):
        return self.data[self._take(1)]

    def unpack(self, depth=0):
        if depth > self.max_depth:
            raise PackStreamError("nesting deeper than %d" % self.max_depth)
        m = self._u8()
        d = self.data
        if m < 0x80:
            return m
        if m >= 0xF0:
            return m - 0x100
        hi = m & 0xF0
        if hi == 0x80:
            return self._string(m & 0x0F)
        if hi == 0x90:
            return self._list(m & 0x0F, depth)
        if hi == 0xA0:
            return self._dict(m & 0x0F, depth)
        if hi == 0xB0:
            return self._struct(m & 0x0F, depth)
        if m == 0xC0:
            return None
        if m == 0xC1:
            return _unpack_d(d, self._take(8))[0]
        if m == 0xC2:
            return False
        if m == 0xC3:
            return True
        if m == 0xC8:
            return _unpack_b(d, self._take(1))[0]
        if m == 0xC9:
            return _unpack_h(d, self._take(2))[0]
        if m == 0xCA:
            return _unpack_i(d, self._take(4))[0]
        if m == 0xCB:
            return _unpack_q(d, self._take(8))[0]
        if m == 0xCC:
            return self._bytes(self._u8())
        if m == 0xCD:
            return self._bytes(_unpack_H(d, self._take(2))[0])
        if m == 0xCE:
            return self._bytes(self._u32())
        if m == 0xD0:
            return self._string(self._u8())
        if m == 0xD1:
            return self._string(_unpack_H(d, self._take(2))[0])
        if m == 0xD2:
            return self._string(self._u32())
        if m == 0xD4:
            return self._list(self._u8(), depth)
        if m == 0xD5:
            return self._list(_unpack_H(d, self._take(2))[0], depth)
        if m == 0xD6:
            return self._list(self._u32(), depth)
        if m == 0xD8:
            return self._dict(self._u8(), depth)
        if m == 0xD9:
            return self._dict(_unpack_H(d, self._take(2))[0], depth)
        if m == 0xDA:
            return self._dict(self._u32(), depth)
        raise PackStreamError("unknown marker 0x%02X at offset %d" % (m, self.pos - 1))

    def _u32(self):
        n = _unpack_I(self.data, self._take(4))[0]
        if n > 0x7FFFFFFF:
            raise PackStreamError("size exceeds 2^31-1: %d" % n)
        return n

    def _bytes(self, n):
        p = self._take(n)
        return self.data[p:p + n]

    def _string(self, n):
        p = self._take(n)
        try:
            return self.data[p:p + n].decode("utf-8")
        except UnicodeDecodeError as e:
            raise PackStreamError("invalid UTF-8 in string: %s" % e) from None

    def _list(self, n, depth):
        if n > self.remaining():
            raise PackStreamError("list size %d exceeds remaining data" % n)
        return [self.unpack(depth + 1) for _ in range(n)]

    def _dict(self, n, depth):
        if n * 2 > self.remaining():
            raise PackStreamError("dictionary size %d exceeds remaining data" % n)
        out = {}
        for _ in range(n):
            k = self.unpack(depth + 1)
            if type(k) is not str:
                raise PackStreamError("dictionary key is not a string: %r" % (k,))
            out[k] = self.unpack(depth + 1)  # duplicate key: last one wins
        return out

    def _struct(self, n, depth):
        tag = self._u8()
        return Structure(tag, [self.unpack(depth + 1) for _ in range(n)])


def unpackb(data, max_depth=64):
    """Decode exactly one value from data; trailing bytes are an error."""
    u = Unpacker(data, max_depth)
    v = u.unpack()
    if u.remaining():
        raise PackStreamError("%d trailing bytes after value" % u.remaining())
    return v
