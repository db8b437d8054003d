"""Vietnamese text rules: normalisation, folding, search tokens, collation, names, file order."""

from __future__ import annotations

import random
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from edge.text import (
    MAX_TOKEN_LEN,
    VIETNAMESE_LETTERS,
    Tone,
    fold,
    name_sort_key,
    natural_key,
    nfc,
    prefix_tokens,
    search_tokens,
    sort_key,
    split_name,
)

VIETNAMESE_CHARS = "".join(VIETNAMESE_LETTERS) + "đĐbcdghklmnpqrstvxBCDGHKLMNPQRSTVX"
vietnamese_text = st.text(alphabet=VIETNAMESE_CHARS + "  -", max_size=30)
any_text = st.text(max_size=40)
mixed_text = st.one_of(any_text, vietnamese_text)


def test_nfc_composes_and_collapses_whitespace() -> None:
    decomposed = "Nguye\u0302\u0303n  \t Va\u0306n\u00a0\u0110u\u031b\u0301c\n"
    assert nfc(decomposed) == "Nguyễn Văn Đức"
    assert nfc("\ufeffLê\u200b Thị ") == "Lê Thị"
    assert nfc("") == ""


@given(mixed_text)
def test_nfc_is_idempotent(s: str) -> None:
    assert nfc(nfc(s)) == nfc(s)


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Nguyễn Văn Đức", "nguyen van duc"),
        ("ĐẶNG THỊ HỒNG", "dang thi hong"),
        ("Trương  Ngọc\tÁnh", "truong ngoc anh"),
        ("Nguye\u0302\u0303n", "nguyen"),
        ("ÐỨC", "duc"),
    ],
)
def test_fold_examples(raw: str, folded: str) -> None:
    assert fold(raw) == folded


@given(mixed_text)
@example("a \u0301 b")
@example("\u0301 a")
def test_fold_is_idempotent(s: str) -> None:
    assert fold(fold(s)) == fold(s)


@given(mixed_text)
def test_fold_ignores_prior_normalisation(s: str) -> None:
    assert fold(nfc(s)) == fold(s)
    assert fold(unicodedata.normalize("NFD", s)) == fold(s)


@given(mixed_text)
def test_fold_output_has_no_marks_and_no_d_stroke(s: str) -> None:
    out = fold(s)
    assert all(unicodedata.combining(ch) == 0 for ch in out)
    assert all(unicodedata.category(ch) not in ("Mn", "Me") for ch in out)
    assert not set(out) & set("đĐ")


@given(vietnamese_text)
def test_fold_of_vietnamese_is_plain_lowercase_ascii(s: str) -> None:
    out = fold(s)
    assert out.isascii()
    assert out == out.lower()


def test_search_tokens_dedupe_and_keep_order() -> None:
    assert search_tokens("Nguyễn Văn Đức, NGUYEN-van") == ["nguyen", "van", "duc"]
    assert search_tokens("  ") == []
    assert search_tokens("a_b") == ["a", "b"]


def test_search_tokens_are_bounded() -> None:
    long_word = "x" * 100
    assert search_tokens(long_word) == ["x" * MAX_TOKEN_LEN]


def test_prefix_tokens() -> None:
    assert prefix_tokens("Nguyễn Y") == ["ng", "ngu", "nguy", "nguye", "nguyen", "y"]
    assert prefix_tokens("Hà Hải", min_len=3) == ["ha", "hai"]
    with pytest.raises(ValueError):
        prefix_tokens("x", min_len=0)


@given(mixed_text, mixed_text)
def test_every_query_prefix_is_indexed(name: str, extra: str) -> None:
    index = set(prefix_tokens(name + " " + extra))
    for token in search_tokens(name):
        for end in range(2, len(token) + 1):
            assert search_tokens(token[:end]) == [token[:end]]
            assert token[:end] in index


@given(st.text(alphabet="ab ", max_size=200))
def test_prefix_tokens_bounded(s: str) -> None:
    tokens = prefix_tokens(s)
    assert all(len(t) <= MAX_TOKEN_LEN for t in tokens)
    assert len(tokens) == len(set(tokens))


def test_vietnamese_letters_table() -> None:
    assert len(VIETNAMESE_LETTERS) == 144
    assert VIETNAMESE_LETTERS["ặ"] == ("ă", Tone.NANG)
    assert VIETNAMESE_LETTERS["Ỡ"] == ("Ơ", Tone.NGA)
    assert VIETNAMESE_LETTERS["ư"] == ("ư", Tone.NGANG)
    assert VIETNAMESE_LETTERS["ỳ"] == ("y", Tone.HUYEN)
    assert VIETNAMESE_LETTERS["ẩ"] == ("â", Tone.HOI)
    assert all(unicodedata.is_normalized("NFC", k) and len(k) == 1 for k in VIETNAMESE_LETTERS)


ORDERED_CHAINS = [
    ["an", "ăn", "ân", "bà"],
    ["da", "đa"],
    ["ma", "mà", "mả", "mã", "má", "mạ"],
    ["Dũng", "Đức"],
    ["e", "ê", "f", "g"],
    ["o", "ô", "ơ", "p"],
    ["u", "ư", "v", "w", "x", "y", "z"],
    ["i", "j", "k"],
    ["9", "a"],
    ["ma", "ma b", "mà"],
    ["ma", "Ma"],
    ["Lê An", "Lê Bình", "Lê Thị"],
    ["Lê", "Lưu", "Lý"],
]


@pytest.mark.parametrize("chain", ORDERED_CHAINS)
def test_sort_key_examples(chain: list[str]) -> None:
    keys = [sort_key(s) for s in chain]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_sort_key_sorts_a_list() -> None:
    names = ["Đức", "Dũng", "bà", "ân", "ăn", "an", "mạ", "má", "mã", "mả", "mà", "ma", "đa", "da"]
    assert sorted(names, key=sort_key) == [
        "an",
        "ăn",
        "ân",
        "bà",
        "da",
        "Dũng",
        "đa",
        "Đức",
        "ma",
        "mà",
        "mả",
        "mã",
        "má",
        "mạ",
    ]


def test_sort_key_ignores_normalisation_form() -> None:
    assert sort_key("Nguye\u0302\u0303n  Văn") == sort_key("Nguyễn Văn")


@given(mixed_text, mixed_text)
def test_sort_key_is_a_total_order_on_normalised_text(a: str, b: str) -> None:
    ka, kb = sort_key(a), sort_key(b)
    assert (ka < kb) + (ka == kb) + (ka > kb) == 1
    assert (ka == kb) == (nfc(a) == nfc(b))


@given(mixed_text, mixed_text, mixed_text)
def test_sort_key_is_transitive(a: str, b: str, c: str) -> None:
    ka, kb, kc = sort_key(a), sort_key(b), sort_key(c)
    if ka <= kb and kb <= kc:
        assert ka <= kc


@given(st.lists(vietnamese_text, max_size=8), st.randoms())
def test_sort_key_order_does_not_depend_on_input_order(
    words: list[str], rnd: random.Random
) -> None:
    shuffled = list(words)
    rnd.shuffle(shuffled)
    assert [nfc(w) for w in sorted(words, key=sort_key)] == [
        nfc(w) for w in sorted(shuffled, key=sort_key)
    ]


def _without_tone_and_case(word: str) -> str:
    return "".join(VIETNAMESE_LETTERS.get(ch, (ch, Tone.NGANG))[0] for ch in word).lower()


vietnamese_word = st.text(alphabet=VIETNAMESE_CHARS, min_size=1, max_size=8)


@given(vietnamese_word, vietnamese_word)
def test_letters_outrank_tone_and_case_within_a_word(a: str, b: str) -> None:
    plain_a, plain_b = _without_tone_and_case(a), _without_tone_and_case(b)
    if plain_a != plain_b:
        assert (sort_key(a) < sort_key(b)) == (sort_key(plain_a) < sort_key(plain_b))
    elif a.lower() != b.lower() and a.lower() == a and b.lower() == b:
        tones_a = [VIETNAMESE_LETTERS.get(ch, (ch, Tone.NGANG))[1] for ch in a]
        tones_b = [VIETNAMESE_LETTERS.get(ch, (ch, Tone.NGANG))[1] for ch in b]
        first_a = next((t for t in tones_a if t), Tone.NGANG)
        first_b = next((t for t in tones_b if t), Tone.NGANG)
        if first_a != first_b:
            assert (sort_key(a) < sort_key(b)) == (first_a < first_b)


def test_name_sort_key_orders_by_given_then_family_then_middle() -> None:
    people = [
        ("Lê", "Thị", "Bình"),
        ("Trần", "Văn", "An"),
        ("Nguyễn", "Văn", "Bình"),
        ("Lê", "Anh", "Bình"),
        ("Đỗ", "", "Ánh"),
    ]
    ordered = sorted(people, key=lambda p: name_sort_key(*p))
    assert ordered == [
        ("Trần", "Văn", "An"),
        ("Đỗ", "", "Ánh"),
        ("Lê", "Anh", "Bình"),
        ("Lê", "Thị", "Bình"),
        ("Nguyễn", "Văn", "Bình"),
    ]


@pytest.mark.parametrize(
    ("full", "parts"),
    [
        ("Nguyễn Văn Đức", ("Nguyễn", "Văn", "Đức")),
        ("Lê Thị Thu Hà", ("Lê", "Thị Thu", "Hà")),
        ("Hà", ("", "", "Hà")),
        ("Trần  Hưng", ("Trần", "", "Hưng")),
        ("  ", ("", "", "")),
        ("Nguye\u0302\u0303n Văn A", ("Nguyễn", "Văn", "A")),
    ],
)
def test_split_name(full: str, parts: tuple[str, str, str]) -> None:
    assert split_name(full) == parts


@given(vietnamese_text)
def test_split_name_round_trips(full: str) -> None:
    family, middle, given_name = split_name(full)
    assert " ".join(p for p in (family, middle, given_name) if p) == nfc(full)


def test_natural_key() -> None:
    files = ["img_10.jpg", "IMG_9.jpg", "img_1.jpg", "img_2.JPG", "img_100.jpg", "cover.pdf"]
    assert sorted(files, key=natural_key) == [
        "cover.pdf",
        "img_1.jpg",
        "img_2.JPG",
        "IMG_9.jpg",
        "img_10.jpg",
        "img_100.jpg",
    ]
    assert natural_key("img_9") < natural_key("img_10")
    assert natural_key("Scan 2") < natural_key("scan 10")
    assert natural_key("A\u0301nh_1") == natural_key("Ánh_1")


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.sampled_from(["img_", "IMG_", "Ảnh "]))
def test_natural_key_orders_numbers(a: int, b: int, prefix: str) -> None:
    ka, kb = natural_key(f"{prefix}{a}.jpg"), natural_key(f"{prefix.lower()}{b}.jpg")
    if a != b:
        assert (ka < kb) == (a < b)


@given(any_text, any_text)
def test_natural_key_is_total(a: str, b: str) -> None:
    ka, kb = natural_key(a), natural_key(b)
    assert (ka < kb) + (ka == kb) + (ka > kb) == 1
