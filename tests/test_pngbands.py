"""Banded PNG decoding gives exactly the pixels a whole decode gives, in a band's memory.

The bands are made small here (a few thousand bytes) so that a test image crosses dozens of
band boundaries, where every filter type of the row after a boundary refers to a row the
band itself does not hold.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from edge.capture import pngbands, readers
from edge.capture.readers import BadInput, open_pages

RNG = np.random.default_rng(7)
PIXELS = RNG.integers(0, 256, (301, 213, 3), dtype=np.uint8)
PIXELS[::5] = 255  # flat rows: the encoder's filter choice varies from row to row


def _palette_with_transparency() -> Image.Image:
    image = Image.fromarray(PIXELS, "RGB").quantize(64)
    image.info["transparency"] = 3
    return image


IMAGES: dict[str, Callable[[], Image.Image]] = {
    "rgb": lambda: Image.fromarray(PIXELS, "RGB"),
    "grey": lambda: Image.fromarray(PIXELS[..., 0], "L"),
    "rgba": lambda: Image.fromarray(np.dstack([PIXELS, PIXELS[..., :1]]), "RGBA"),
    "grey+alpha": lambda: Image.fromarray(PIXELS[..., 0], "L").convert("LA"),
    "palette": lambda: Image.fromarray(PIXELS, "RGB").quantize(200),
    "palette+transparency": _palette_with_transparency,
}


def _png(image: Image.Image, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **options)
    return out.getvalue()


def _whole(data: bytes, reduce: int, grey: bool) -> Image.Image:
    image = PngImagePlugin.PngImageFile(io.BytesIO(data))
    image.load()
    return readers._reduced(image, reduce, grey=grey)


@pytest.fixture
def small_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pngbands, "BAND_BYTES", 3000)


@pytest.mark.parametrize("name", sorted(IMAGES))
@pytest.mark.parametrize(
    "options", [{"optimize": True}, {"compress_level": 1}], ids=["opt", "fast"]
)
def test_banded_decode_equals_the_whole_decode(
    name: str, options: dict[str, object], small_bands: None
) -> None:
    data = _png(IMAGES[name](), **options)
    layout = pngbands.layout(data)
    assert layout is not None
    for reduce in (1, 2, 4):
        for grey in (False, True):
            whole = _whole(data, reduce, grey)
            banded = readers._decode_png_bands(data, layout, reduce, grey=grey)
            assert (banded.mode, banded.size) == (whole.mode, whole.size)
            assert banded.tobytes() == whole.tobytes(), (name, reduce, grey)


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(lambda: Image.fromarray(PIXELS[..., 0], "L").convert("1"), id="1-bit"),
        pytest.param(
            lambda: Image.fromarray(PIXELS[..., 0].astype(np.uint16) * 257).convert("I;16"),
            id="16-bit",
        ),
    ],
)
def test_layouts_scanners_rarely_write_are_decoded_whole(image: Callable[[], Image.Image]) -> None:
    assert pngbands.layout(_png(image())) is None


def test_interlaced_png_is_decoded_whole() -> None:
    data = bytearray(_png(IMAGES["rgb"]()))
    data[28] = 1  # IHDR's interlace byte; the layout is judged before any CRC matters here
    assert pngbands.layout(bytes(data)) is None


def _idat(data: bytes) -> bytes:
    return b"".join(
        bytes(payload) for kind, payload, _ in pngbands._chunks(data) if kind == b"IDAT"
    )


def _with_idat(data: bytes, payload: bytes) -> bytes:
    """The same PNG with its pixel data replaced by one chunk with a valid CRC, so that
    only the data itself is bad."""
    start = data.index(b"IDAT") - 4
    end = data.index(b"IEND") - 4
    return data[:start] + pngbands._chunk(b"IDAT", payload) + data[end:]


def test_pixel_data_that_ends_early_is_a_truncated_scan(tmp_path: Path, small_bands: None) -> None:
    data = _png(IMAGES["rgb"](), compress_level=1)
    idat = _idat(data)
    short = _with_idat(data, idat[: len(idat) // 2])
    path = tmp_path / "short.png"
    path.write_bytes(short)
    with pytest.raises(BadInput) as caught:
        list(open_pages(path))
    assert caught.value.reason == "truncated"


def test_corrupt_pixel_data_is_a_damaged_scan(tmp_path: Path, small_bands: None) -> None:
    data = _png(IMAGES["rgb"](), compress_level=1)
    idat = bytearray(_idat(data))
    idat[len(idat) // 2 : len(idat) // 2 + 64] = bytes(64)
    path = tmp_path / "corrupt.png"
    path.write_bytes(_with_idat(data, bytes(idat)))
    with pytest.raises(BadInput) as caught:
        list(open_pages(path))
    assert caught.value.reason == "damaged"
