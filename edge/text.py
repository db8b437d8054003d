"""Vietnamese text rules shared by capture, store search and the clerk UI.

Everything that compares, searches or sorts Vietnamese text goes through this module so that
the index built at capture time, the query typed by the clerk and the order shown on screen
always agree. Code-point order and the default Unicode collation both put Vietnamese words in
the wrong order (ă and â are separate letters, tones have their own order), so collation is
implemented here from the alphabet itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType
from typing import TypeAlias

__all__ = [
    "MAX_TOKEN_LEN",
    "VIETNAMESE_LETTERS",
    "SortKey",
    "Tone",
    "fold",
    "name_sort_key",
    "natural_key",
    "nfc",
    "number_digits",
    "phone_digits",
    "prefix_tokens",
    "search_tokens",
    "sort_key",
    "split_name",
]

MAX_TOKEN_LEN = 24
"""Tokens are cut to this length so a pasted essay cannot blow up the blind index."""

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\ufeff"))
_WORD = re.compile(r"[^\W_]+")
_DIGITS = re.compile(r"(\d+)")


def nfc(s: str) -> str:
    """Canonical form for every stored or compared string.

    Scanners on macOS shares, old Vietnamese IMEs and pasted text deliver the same word in
    decomposed or precomposed form and with stray spaces; without one canonical form equal
    names would be stored as different values. Zero-width spaces and byte-order marks are
    dropped because they are invisible to the clerk yet break equality and search.
    """
    s = unicodedata.normalize("NFC", s.translate(_INVISIBLE))
    return " ".join(s.split())


_FOLD_D = str.maketrans({"đ": "d", "Đ": "D", "ð": "d", "Ð": "D"})


def _is_mark(ch: str) -> bool:
    return unicodedata.combining(ch) != 0 or unicodedata.category(ch) in ("Mn", "Me")


def fold(s: str) -> str:
    """Accent- and case-insensitive form, so "nguyen van duc" finds "Nguyễn Văn Đức".

    Clerks and citizens often type without diacritics; search must ignore them. NFD does not
    split đ into d + mark, so it is mapped explicitly; the look-alike Ð/ð (U+00D0/U+00F0), which
    legacy Vietnamese encodings and some keyboards produce instead of Đ/đ, is mapped too.
    Casefolding sits between two decompositions because casefold can produce characters that
    decompose further, and the result must be stable when folded again.
    """
    s = unicodedata.normalize("NFD", nfc(s)).casefold()
    s = unicodedata.normalize("NFD", s)
    s = "".join(ch for ch in s if not _is_mark(ch)).translate(_FOLD_D)
    return " ".join(unicodedata.normalize("NFC", s).split())


def search_tokens(s: str) -> list[str]:
    """Folded words, each once, in order of first appearance.

    These are what the blind index HMACs. Tokens are cut to MAX_TOKEN_LEN on both the index and
    the query side, so a long query word still matches the stored (cut) token.
    """
    seen: dict[str, None] = {}
    for word in _WORD.findall(fold(s)):
        seen.setdefault(word[:MAX_TOKEN_LEN])
    return list(seen)


def prefix_tokens(s: str, min_len: int = 2, max_len: int = MAX_TOKEN_LEN) -> list[str]:
    """Every prefix of every search token, so that typing "ngu" can match "Nguyễn".

    Prefixes shorter than min_len are left out because one-letter prefixes would make the index
    nearly useless and reveal too much through HMAC frequencies; a whole token shorter than
    min_len (the Ê Đê given name "Y") is still included so an exact search for it works. The
    query side should look up search_tokens(query); a query word shorter than min_len then
    matches only whole tokens.
    """
    if min_len < 1 or max_len < min_len:
        raise ValueError(f"need 1 <= min_len <= max_len; got min_len={min_len}, max_len={max_len}")
    seen: dict[str, None] = {}
    for token in search_tokens(s):
        token = token[:max_len]
        if len(token) < min_len:
            seen.setdefault(token)
        for end in range(min_len, len(token) + 1):
            seen.setdefault(token[:end])
    return list(seen)


def number_digits(s: str) -> str:
    """The digits of a number as written, in ASCII: "036 085.012-345" -> "036085012345".

    Clerks group digits with spaces, dots and dashes as the paper shows them, and some input
    methods type full-width or other-script digits; a number must be stored and searched as
    the same digits however it was typed.
    """
    out = []
    for ch in s:
        value = unicodedata.decimal(ch, None)
        if value is not None:
            out.append(str(value))
    return "".join(out)


def phone_digits(s: str) -> str:
    """One national form for a phone number: "+84 912 345 678", "0912.345.678" and
    "84912345678" are all "0912345678".

    Citizens write their number in whichever form their phone shows, and the clerk types
    what is on the paper, so the country code (``+84``, ``0084``, or ``84`` before a
    9- or 10-digit national number), a "(0)" kept after it, and a missing leading 0 all
    have to fold to the one form the index is built from. A foreign number (``+`` or
    ``00`` and another country code) keeps its country code behind ``00`` so it cannot
    collide with a national one. Anything else is left as its digits, so a partial number
    stays what was typed.
    """
    written = nfc(s).lstrip(" (")
    digits = number_digits(written)
    international = written.startswith("+")
    if not international and digits.startswith("00"):
        digits, international = digits[2:], True
    if digits.startswith("84") and (international or len(digits) in (11, 12)):
        national = digits[2:]
        return national if national.startswith("0") else "0" + national
    if international:
        return "00" + digits
    if len(digits) in (9, 10) and not digits.startswith("0"):
        return "0" + digits
    return digits


class Tone(IntEnum):
    """The six Vietnamese tones, valued in their collation order."""

    NGANG = 0
    HUYEN = 1
    HOI = 2
    NGA = 3
    SAC = 4
    NANG = 5


_TONE_MARKS: Mapping[Tone, str] = {
    Tone.NGANG: "",
    Tone.HUYEN: "\u0300",
    Tone.HOI: "\u0309",
    Tone.NGA: "\u0303",
    Tone.SAC: "\u0301",
    Tone.NANG: "\u0323",
}

_ALPHABET = "aăâbcdđeêfghijklmnoôơpqrstuưvwxyz"
"""The Vietnamese alphabet in order, with f, j, w, z (used in loanwords) in their Latin places."""

_VOWELS = "aăâeêioôơuưy"


def _build_letters() -> Mapping[str, tuple[str, Tone]]:
    table: dict[str, tuple[str, Tone]] = {}
    for base in _VOWELS + _VOWELS.upper():
        for tone, mark in _TONE_MARKS.items():
            table[unicodedata.normalize("NFC", base + mark)] = (base, tone)
    return MappingProxyType(table)


VIETNAMESE_LETTERS: Mapping[str, tuple[str, Tone]] = _build_letters()
"""Each precomposed (NFC) Vietnamese vowel letter, both cases, as (base letter, tone).

"ặ" -> ("ă", Tone.NANG); "Ỡ" -> ("Ơ", Tone.NGA). Generated from the 12 vowel letters and the five
tone marks, so it has 144 entries and cannot miss one the way a hand-typed table could.
"""

_LOOKALIKES = {"Ð": "Đ", "ð": "đ"}
_LETTER_BASE = 100
_OTHER_BASE = 10_000
_PRIMARY: Mapping[str, int] = MappingProxyType(
    {letter: _LETTER_BASE + i for i, letter in enumerate(_ALPHABET)}
)

_WordKey: TypeAlias = tuple[tuple[int, ...], int, tuple[tuple[int, ...], ...]]
SortKey: TypeAlias = tuple[tuple[_WordKey, ...], tuple[int, ...], str]
"""(per word: primary letters, syllable tone, per-letter detail; case per letter; the text)."""


def _primary(base: str) -> int:
    lower = base.lower()
    weight = _PRIMARY.get(lower)
    if weight is not None:
        return weight
    digit = unicodedata.decimal(base, None)
    if digit is not None:
        return 1 + digit
    return _OTHER_BASE + ord(lower[0])


def _clusters(s: str) -> list[str]:
    """Split into a base character plus the combining marks that follow it."""
    out: list[str] = []
    for ch in s:
        if out and _is_mark(ch):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _letter(cluster: str) -> tuple[int, Tone, tuple[int, ...], int]:
    """(primary weight, tone, foreign marks, case) of one base character with its marks."""
    head = _LOOKALIKES.get(cluster[0], cluster[0])
    trailing = cluster[1:]
    if head in VIETNAMESE_LETTERS:
        base, tone = VIETNAMESE_LETTERS[head]
    else:
        decomposed = unicodedata.normalize("NFD", head)
        base, tone, trailing = decomposed[0], Tone.NGANG, decomposed[1:] + trailing
    upper = 1 if base != base.lower() else 0
    return _primary(base), tone, tuple(map(ord, trailing)), upper


def sort_key(s: str) -> SortKey:
    """Vietnamese collation key: alphabet order first, then tone, then case.

    Words (runs of letters and digits) are compared one by one, each by its letters and then its
    tone, as Vietnamese dictionaries order syllables: "ma" and its compounds come before "mà".
    The syllable's tone is compared before where the mark sits, so "hòa" and "hoà" are neighbours.
    Case is compared only when everything else is equal, and the normalised text itself breaks
    the last ties so that sorting is deterministic. Non-Vietnamese marks (ç, ü) count as small
    differences after the tone; digits sort before letters, other scripts after z.
    """
    text = nfc(s)
    words: list[_WordKey] = []
    cases: list[int] = []
    primaries: list[int] = []
    details: list[tuple[int, ...]] = []
    syllable_tone = Tone.NGANG

    def close_word() -> None:
        nonlocal syllable_tone
        if primaries:
            words.append((tuple(primaries), int(syllable_tone), tuple(details)))
        primaries.clear()
        details.clear()
        syllable_tone = Tone.NGANG

    for cluster in _clusters(text):
        if not cluster[0].isalnum():
            close_word()
            continue
        weight, tone, marks, upper = _letter(cluster)
        primaries.append(weight)
        details.append((int(tone), *marks))
        cases.append(upper)
        if syllable_tone is Tone.NGANG:
            syllable_tone = tone
    close_word()
    return tuple(words), tuple(cases), text


def name_sort_key(family: str, middle: str, given: str) -> tuple[SortKey, SortKey, SortKey]:
    """Key for lists of people: Vietnamese registers order by given name, then family, then middle.

    A person is addressed and filed by the given name (the last word), so "Trần Văn An" comes
    before "Lê Thị Bình".
    """
    return sort_key(given), sort_key(family), sort_key(middle)


def split_name(full: str) -> tuple[str, str, str]:
    """(family, middle, given) from a full name written in Vietnamese order.

    A best guess for when only the full name is known: the first word is the family name, the
    last the given name, the rest the middle name. Two-word family names (Tôn Thất, Âu Dương)
    and minority naming customs cannot be recognised from the string, so the form lets the clerk
    correct the split and the store keeps the three parts separately once known.
    """
    words = nfc(full).split(" ")
    if words == [""]:
        return "", "", ""
    if len(words) == 1:
        return "", "", words[0]
    return words[0], " ".join(words[1:-1]), words[-1]


def natural_key(name: str) -> tuple[tuple[str | int, ...], str]:
    """File-name key in natural order (img_9 before img_10), ignoring case.

    Scanners number pages without leading zeros, so loose files must be ordered by the numbers
    in their names. The name is NFC-normalised first because macOS clients write decomposed
    names to SMB shares. Digit runs compare as numbers, and the exact name breaks ties
    (img_01 vs img_1, IMG_1 vs img_1) so the order is total and repeatable.
    """
    normal = unicodedata.normalize("NFC", name)
    parts = _DIGITS.split(normal.casefold())
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), normal
