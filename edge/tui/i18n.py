"""Translations for the clerk UI: gettext catalogues, compiled from their .po sources on load.

The .po files under ``locale/`` are the sources kept in git; Babel compiles them
in memory when the UI starts (a few milliseconds), so there is no build step to
forget and no compiled file to drift from its source. Message ids are English;
Vietnamese is the default language, English the second one.

Every string a clerk can see goes through ``_`` or ``ngettext`` here. Strings
defined before a language is chosen (screen titles, binding descriptions) are
marked with ``N_`` and translated where they are shown.
"""

from __future__ import annotations

import gettext
import io
from datetime import date, datetime
from functools import cache
from pathlib import Path

from babel.dates import format_date as _babel_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from edge.domain import PORTAL_TZ

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "edge"
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> gettext.GNUTranslations:
    """The compiled catalogue of one language (fuzzy entries are left out, as msgfmt does)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}: use one of {', '.join(LANGUAGES)}")
    with po_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


class _Current:
    lang: str = DEFAULT_LANGUAGE
    catalogue: gettext.GNUTranslations | None = None


def set_language(lang: str) -> None:
    _Current.catalogue = translations(lang)
    _Current.lang = lang


def language() -> str:
    return _Current.lang


def _catalogue() -> gettext.GNUTranslations:
    if _Current.catalogue is None:
        set_language(_Current.lang)
    assert _Current.catalogue is not None
    return _Current.catalogue


def _(message: str) -> str:
    return _catalogue().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _catalogue().ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated later, where it is shown."""
    return message


def in_language(lang: str, message: str) -> str:
    """One message in a given language, whatever the UI shows (the handover PDF is Vietnamese)."""
    return translations(lang).gettext(message)


def number(n: int) -> str:
    """1.234 in Vietnamese, 1,234 in English."""
    return format_decimal(n, locale=_Current.lang)


def day(value: date) -> str:
    """Dates as each language writes them on forms: 28/11/2026, or 28 Nov 2026."""
    pattern = "dd/MM/yyyy" if _Current.lang == "vi" else "d MMM yyyy"
    return _babel_date(value, pattern, locale=_Current.lang)


def local_time(iso_text: str | None, *, with_date: bool = True) -> str:
    """A stored UTC time as the counter's clock shows it (Vietnam time)."""
    if not iso_text:
        return "—"
    moment = datetime.fromisoformat(iso_text.replace("Z", "+00:00")).astimezone(PORTAL_TZ)
    clock = moment.strftime("%H:%M")
    if not with_date:
        return clock
    short = moment.strftime("%d/%m") if _Current.lang == "vi" else moment.strftime("%d %b")
    return f"{short} {clock}"


def _complete(string: object) -> bool:
    forms = string if isinstance(string, tuple | list) else (string,)
    return all(forms)


def update_catalogues() -> dict[str, list[str]]:
    """Bring both .po files in line with the code (``make messages``).

    New messages are added (English filled in, Vietnamese left empty for a
    translator: the test suite fails until it is written), messages no longer
    used are dropped, English entries left empty are filled in, and translations
    already there are kept.
    """
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.pofile import write_po

    used: dict[str | tuple[str, ...], None] = {}
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(Path(__file__).parent), keywords=DEFAULT_KEYWORDS
    ):
        used.setdefault(message if isinstance(message, str) else tuple(message))
    report: dict[str, list[str]] = {}
    for lang in LANGUAGES:
        with po_path(lang).open("rb") as fh:
            catalog = read_po(fh, locale=lang, domain=DOMAIN)
        known = {m.id if isinstance(m.id, str) else tuple(m.id): m for m in catalog if m.id}
        for key in list(known):
            if key not in used:
                catalog.delete(key)
            elif lang == "en" and not _complete(known[key].string):
                known[key].string = key  # English is the message id itself
        untranslated = []
        for key in used:
            if key in known:
                continue
            if lang == "en":
                catalog.add(key, key)
            else:
                empty: str | tuple[str, ...] = ("",) if isinstance(key, tuple) else ""
                catalog.add(key, empty)
                untranslated.append(str(key))
        with po_path(lang).open("wb") as fh:
            write_po(fh, catalog, width=100, sort_output=True, no_location=True)
        report[lang] = untranslated
    translations.cache_clear()
    return report


if __name__ == "__main__":
    for lang, missing in update_catalogues().items():
        for message in missing:
            print(f"{lang}: translate {message!r}")
