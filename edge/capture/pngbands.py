"""Decode a PNG a band of rows at a time, so a large scan never exists whole in colour.

Pillow decodes a PNG in one piece, at four bytes a pixel for colour: an A4 page scanned at
600 dpi takes 139 MB before it can be reduced or turned grey, more than a Raspberry Pi can
spare beside everything else the daemon holds. A PNG's pixels are one zlib stream of
scanlines, each filtered against the row above it. So the stream is inflated here a few
megabytes at a time, and each band of rows is handed to Pillow as a small PNG of its own:
the band's rows exactly as stored, after the band above's last row written unfiltered
(filter type 0), which is all the first row's filter can refer to. The pixels Pillow gives
back are the ones it would have decoded from the whole file.

Only the layouts scanners write are banded: 8 bits a sample, not interlaced, grey, grey
with alpha, palette, colour or colour with alpha. Anything else (16-bit, 1-bit, Adam7) is
decoded whole by the caller and priced as such.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from PIL import Image, PngImagePlugin

SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"

BAND_BYTES: Final = 4 * 2**20
"""Scanline bytes inflated and decoded at once. A band costs about six times this at its
peak (the inflated rows, their stored copy, Pillow's four-byte pixels and the band's
conversions): see :data:`BAND_COST`."""

BAND_COST: Final = 6 * BAND_BYTES
"""What decoding one band holds beside the image it is pasted into."""

_MODES: Final[dict[int, tuple[str, int]]] = {
    0: ("L", 1),
    2: ("RGB", 3),
    3: ("P", 1),
    4: ("LA", 2),
    6: ("RGBA", 4),
}
"""PNG colour type at 8 bits a sample → Pillow's mode (also its raw mode) and samples a pixel."""

_CARRIED: Final = frozenset({b"PLTE", b"tRNS"})
"""Chunks a band needs to be decoded as the whole file would be."""


@dataclass(frozen=True)
class Layout:
    """What a PNG's header says about its scanlines, when they can be decoded in bands."""

    width: int
    height: int
    mode: str
    samples: int
    ihdr: bytes
    carried: bytes
    """The PLTE and tRNS chunks, copied as they are into every band."""

    @property
    def row_bytes(self) -> int:
        return self.width * self.samples


def _chunks(data: bytes) -> Iterator[tuple[bytes, memoryview, bytes]]:
    """Yield (type, payload, whole chunk) up to IEND; the structure was checked before."""
    view = memoryview(data)
    pos = len(SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        yield kind, view[pos + 8 : end - 4], data[pos:end] if kind in _CARRIED else b""
        if kind == b"IEND":
            return
        pos = end


def layout(data: bytes) -> Layout | None:
    """The PNG's layout if it can be decoded in bands, else None."""
    if not data.startswith(SIGNATURE):
        return None
    carried = b""
    header: tuple[int, int, int, int, int] | None = None
    ihdr = b""
    for kind, payload, whole in _chunks(data):
        if kind == b"IHDR" and len(payload) >= 13:
            ihdr = bytes(payload[:13])
            width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", ihdr)
            header = (width, height, depth, colour, interlace)
        elif kind in _CARRIED:
            carried += whole
        elif kind == b"IDAT":
            break
    if header is None:
        return None
    width, height, depth, colour, interlace = header
    if depth != 8 or interlace != 0 or colour not in _MODES or width < 1 or height < 1:
        return None
    mode, samples = _MODES[colour]
    return Layout(width, height, mode, samples, ihdr, carried)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _band_png(png: Layout, rows: int, scanlines: bytes) -> bytes:
    ihdr = struct.pack(">II", png.width, rows) + png.ihdr[8:]
    return (
        SIGNATURE
        + _chunk(b"IHDR", ihdr)
        + png.carried
        + _chunk(b"IDAT", zlib.compress(scanlines, 0))
        + _chunk(b"IEND", b"")
    )


def band_rows(png: Layout, multiple: int) -> int:
    """Rows a band holds: about :data:`BAND_BYTES`, a multiple of ``multiple`` so that
    reducing band by band gives what reducing the whole image gives."""
    rows = max(1, BAND_BYTES // (png.row_bytes + 1))
    return max(multiple, rows - rows % multiple)


def bands(data: bytes, png: Layout, rows: int) -> Iterator[tuple[int, Image.Image]]:
    """Yield (first row, decoded band) from top to bottom, each in ``png.mode``.

    Raises OSError naming truncation when the pixel data ends early, and zlib.error or
    whatever Pillow raises when it is corrupt.
    """
    stride = png.row_bytes + 1
    inflater = zlib.decompressobj()
    idat = (payload for kind, payload, _ in _chunks(data) if kind == b"IDAT")
    above = b""
    for top in range(0, png.height, rows):
        count = min(rows, png.height - top)
        want = count * stride
        # the row above, unfiltered, for the first row's filter; then exactly ``want``
        # bytes of this band's scanlines, inflated a piece at a time and joined once
        parts = [b"\x00" + above] if above else []
        have = 0
        while have < want:
            source = inflater.unconsumed_tail or next(idat, None)
            if source is None:
                raise OSError(f"image file is truncated (PNG pixel data ends at row {top})")
            piece = inflater.decompress(source, want - have)
            parts.append(piece)
            have += len(piece)
        scanlines = b"".join(parts)
        del parts
        decoded = PngImagePlugin.PngImageFile(
            io.BytesIO(_band_png(png, count + bool(above), scanlines))
        )
        decoded.load()
        del scanlines
        band: Image.Image = decoded
        if above:
            band = decoded.crop((0, 1, png.width, count + 1))
        above = band.crop((0, count - 1, png.width, count)).tobytes("raw", png.mode)
        yield top, band
