"""Every kind of bad input a scanner folder sees, generated on the spot.

Used by the reader tests and by the end-to-end test; returns, for each file it
writes, the quarantine reason capture must give.
"""

from __future__ import annotations

import io
from pathlib import Path

from edge import samples
from tests.test_readers import bomb_png, encrypted_pdf


def _jpeg() -> bytes:
    buf = io.BytesIO()
    samples.save_jpeg(samples.text_page(3, dpi=100), buf, dpi=100)
    return buf.getvalue()


def write_all(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    jpeg = _jpeg()
    files = {
        "empty.jpg": (b"", "empty"),
        "half.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "notes.jpg": ("Ghi chú: đây là văn bản, không phải ảnh.\n".encode(), "not_an_image"),
        "fake.pdf": (b"%PDF-1.4\n" + b"garbage " * 200, "damaged_pdf"),
        "bomb.png": (bomb_png(), "decompression_bomb"),
        "locked.pdf": (encrypted_pdf(b"user-secret", b"owner-secret"), "encrypted_pdf"),
    }
    for name, (data, _reason) in files.items():
        (folder / name).write_bytes(data)
    return {name: reason for name, (_data, reason) in files.items()}
