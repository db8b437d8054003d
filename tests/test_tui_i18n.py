"""The catalogues: every message the UI uses is translated, in NFC, with its placeholders."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from edge.tui import i18n

TUI = Path(i18n.__file__).parent
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def used_messages() -> set[str | tuple[str, str]]:
    found: set[str | tuple[str, str]] = set()
    for _filename, _line, message, _comments, _context in extract_from_dir(
        str(TUI), keywords=DEFAULT_KEYWORDS
    ):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def catalogue(lang: str):
    with i18n.po_path(lang).open("rb") as fh:
        return read_po(fh, locale=lang)


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_no_missing_or_fuzzy_entries(lang: str) -> None:
    cat = catalogue(lang)
    problems = []
    for message in cat:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        if not all(strings):
            problems.append(f"untranslated: {message.id!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_message_used_in_code_is_in_the_catalogue(lang: str) -> None:
    cat = catalogue(lang)
    known = {m.id if isinstance(m.id, str) else tuple(m.id) for m in cat if m.id}
    missing = sorted(map(str, used_messages() - known))
    assert not missing, "add these to the .po files (make messages): " + "\n".join(missing)


def test_no_obsolete_entries_linger() -> None:
    used = used_messages()
    stale = [
        m.id
        for m in catalogue("vi")
        if m.id and (m.id if isinstance(m.id, str) else tuple(m.id)) not in used
    ]
    assert not stale, f"no longer used in code: {stale}"


def test_vietnamese_is_nfc_and_keeps_every_placeholder() -> None:
    for message in catalogue("vi"):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(ids[0]))
        for string in strings:
            assert unicodedata.is_normalized("NFC", string), message.id
            assert set(PLACEHOLDER.findall(string)) == wanted, message.id


def test_catalogues_compile_at_load_time() -> None:
    vi = i18n.translations("vi")
    assert vi.gettext("Sign in") == "Đăng nhập"
    assert vi.gettext("User name") == "Tên đăng nhập"
    assert vi.gettext("Password") == "Mật khẩu"
    assert vi.gettext("Search") == "Tìm kiếm"
    assert vi.gettext("Hand back") == "Trả kết quả"
    assert vi.gettext("Dossiers waiting for details ({n})").startswith(
        "Hồ sơ chờ bổ sung thông tin"
    )
    assert vi.ngettext("{n} page", "{n} pages", 3) == "{n} trang"
    assert i18n.translations("en").ngettext("{n} page", "{n} pages", 1) == "{n} page"
