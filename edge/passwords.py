"""How hard a clerk's password is to guess, with Vietnamese in mind.

The office key on a stolen box or SD card is wrapped under each clerk's password with
scrypt (edge/vault.py): every guess costs the thief 32 MiB and a fraction of a second
of one CPU core; a high-end GPU manages some 10^4 a second. Length alone says nothing about how
soon a guess lands: ``12345678`` and eight spaces are eight characters. So a chosen
password is scored by zxcvbn (the estimator Dropbox built from real leaked-password
lists), fed with what a guesser aiming at this office would try first: common
Vietnamese words, family, middle and given names, province and city names, the words
people put in passwords here ("matkhau", "anhyeuem", "buudien"), the clerk's user name
and the office code. Vietnamese is scored as typed, with its diacritics removed
(clerks type either, and a guesser folds them) and with the breaks between its words
taken out; the weakest of these counts.

The verdict is a stable reason code (``password_sequence``, ``password_personal``, ...)
that the UI turns into one line saying what to do instead; no wording lives here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

MIN_LENGTH = 8
"""Shorter than this is refused before anything is estimated."""

MIN_GUESSES = 10**12
"""How many guesses the estimator must expect before this password falls.

A thief with the SD card guesses offline against scrypt (N=2^15, r=8, p=1: 32 MiB a
guess). One high-end GPU is estimated at a few times 10^4 such guesses a second, so
10^12 is about a year of one GPU, or weeks of a rig of eight; a phrase of four
unrelated words is usually estimated far above it (docs/threat-model.md has the
numbers). zxcvbn's own "very unguessable" is 10^10: days of one GPU, too little for
a key that opens years of citizens' records.
"""

ESTIMATE_LENGTH = 72
"""zxcvbn refuses longer input; a longer password is judged by its first 72 characters."""

# Ordered most common first: zxcvbn ranks a dictionary word by its position.
_PASSWORD_WORDS = """
matkhau anhyeuem emyeuanh yeuem yeuanh iloveyou vietnam hanoi saigon hochiminh tphcm
buudien vnpost buuchinh admin quantri nhanvien canbo ketoan giamdoc dangnhap taikhoan
matma baomat bimat tamthoi thunghiem moi xinchao camon tinhyeu hanhphuc giadinh
cuocsong thienthan muaxuan mattroi mattrang ngoisao bautroi hoahong hoasen hoamai
hoadao bongda sieunhan doremon communeedge edge motcua hoso congdan hanhchinh
dichvucong tiepnhan ketqua ubnd xa phuong huyen tinh thanhpho quan thon ap lang xom
tet chucmung namoi conmeo concho conga convit conheo contrau conbo conran conrong
conho conkhi conngua ty suu dan mao thin ngo mui than dau tuat hoi
"""

_COMMON_SYLLABLES = """
mat khau sai dung cua va la co cac nhung mot trong duoc cho khong nguoi nay da voi ve
de den tu khi thi ra nhu se lam di len vao bi tai nhieu theo sau truoc tren duoi ngoai
giua rat qua lai con cung them bang hon nhat ca gi ai sao nao day kia ay oi nhe nha chu
ma neu vi nen hay hoac roi chua dang van cu vua xong het tot xau dep xinh cao thap lon
nho to be dai ngan nhanh cham nong lanh am sach ban tre gia giau ngheo vui buon khoe
yeu ghet an uong ngu choi hoc viet doc noi nghe nhin thay biet hieu nghi muon can phai
lay mua tra gui nhan mo dong bat tat chay bay boi leo ngoi nam xe dap may tau thuyen
duong pho truong lop benh vien phong ghe giuong sach vo but giay muc ao mu dep com bun
banh mi che phe sua nuoc ruou bia thit trung rau cam chuoi xoai dua tao nho mit hoa cay
rung nui song bien ho suoi troi dat nang gio trang do vang xanh tim hong nau xam meo ga
vit heo trau bo ngua chim tom cha me chau chu bac di cau mo chi em thay ngay dem sang
trua chieu toi tuan thang nam gio phut xuan ha thu dong mot hai ba bon nam sau bay tam
chin muoi tram nghin trieu ty ong ba
"""

_FAMILY_NAMES = """
nguyen tran le pham hoang huynh phan vu vo dang bui do ho ngo duong ly dinh trinh
truong mai luu lam ha cao quach ton dao doan vuong luong chu tang la thai kieu ong
lai tong giang au thach trieu khuc nong quan mac tieu lu ta an bach
"""

_MIDDLE_NAMES = """
van thi huu duc minh ngoc thanh quoc xuan thu kim hong thuy dinh cong tien gia bao
trung tuan hoai khanh phuong dieu nhu bich cam my quang hai thien
"""

_GIVEN_NAMES = """
anh an binh chi cuong dung duy dat giang ha hai hanh hang hien hieu hoa hoai hung
huong huy khanh khoa lan linh loan long mai minh my nam nga ngan nghia ngoc nhung nhi
phong phuc phuong quan quang quynh son tam tan thang thanh thao thu thuy tien trang
trinh trung tu tuan tung uyen van viet vinh vy yen hoang huyen hue lien ly nhan oanh
sang tai thai thinh thuan toan truc vu bao duong giao hau khang khoi kien lam loc
luan nhat phat quy sinh tho thuong hop hien diep dao cuc dung hanh huong kha khue
lanh lieu luyen mien my nguyet nhien phuong quyen suong tham thoa thom tuyet xuyen
"""

_PLACES = """
hanoi haiphong danang hue cantho hochiminh saigon angiang bariavungtau vungtau
bacgiang backan baclieu bacninh bentre binhdinh binhduong binhphuoc binhthuan camau
caobang daklak daknong dienbien dongnai dongthap gialai hagiang hanam hatinh haiduong
haugiang hoabinh hungyen khanhhoa kiengiang kontum laichau lamdong langson laocai
longan namdinh nghean ninhbinh ninhthuan phutho phuyen quangbinh quangnam quangngai
quangninh quangtri soctrang sonla tayninh thaibinh thainguyen thanhhoa thuathienhue
tiengiang travinh tuyenquang vinhlong vinhphuc yenbai nhatrang dalat vinh
"""

_BREAKS = re.compile(r"[\s\-_.,/\\+|:;]+")

VIETNAMESE = "vietnamese"
"""The name of the Vietnamese frequency list inside zxcvbn."""

_REASONS = {
    "repeat": "password_repeats",
    "sequence": "password_sequence",
    "spatial": "password_keyboard",
    "date": "password_date",
    "regex": "password_date",
}

_COMMON_LISTS = {"passwords"}
_WORD_LISTS = {"english_wikipedia", "us_tv_and_film", "surnames", "male_names", "female_names"}


@dataclass(frozen=True)
class Verdict:
    """What the estimator thinks: expected guesses, and why it is weak when it is."""

    guesses: float
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.reason is None


def fold(text: str) -> str:
    """Vietnamese without diacritics, lower case: 'Bưu điện' -> 'buu dien'.

    'đ' is a letter of its own, not a 'd' with a mark, so NFD leaves it whole.
    """
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def vietnamese_words() -> list[str]:
    """The list a guesser aiming at a Vietnamese office tries first, most common first."""
    seen: dict[str, None] = {}
    for block in (
        _PASSWORD_WORDS,
        _COMMON_SYLLABLES,
        _FAMILY_NAMES,
        _MIDDLE_NAMES,
        _GIVEN_NAMES,
        _PLACES,
    ):
        for word in block.split():
            seen.setdefault(word, None)
    return list(seen)


@cache
def _zxcvbn():
    """zxcvbn with the Vietnamese list added, imported once (it loads ~30k words)."""
    from zxcvbn import matching, zxcvbn

    matching.add_frequency_lists({VIETNAMESE: vietnamese_words()})
    return zxcvbn


def personal_inputs(clerk: str, office: str, extra: Iterable[str] = ()) -> list[str]:
    """The user name and the office code in every shape a guesser would type them."""
    found: dict[str, None] = {}
    for value in (clerk, office, *extra):
        value = fold(value or "").strip()
        if not value:
            continue
        for shape in (value, value.replace(".", ""), value.replace(" ", "")):
            found.setdefault(shape, None)
        for part in value.replace(".", " ").replace("-", " ").replace("_", " ").split():
            if len(part) >= 2:
                found.setdefault(part, None)
    return list(found)


def estimate(
    password: str, *, clerk: str = "", office: str = "", extra: Sequence[str] = ()
) -> Verdict:
    """Score a password; the weakest of its forms (``_forms``) counts."""
    if len(password) < MIN_LENGTH:
        return Verdict(0, "password_short")
    if not password.strip():
        return Verdict(0, "password_repeats")
    zxcvbn = _zxcvbn()
    inputs = personal_inputs(clerk, office, extra)
    typed = unicodedata.normalize("NFC", password)[:ESTIMATE_LENGTH]
    results = [zxcvbn(form, user_inputs=inputs) for form in _forms(typed)]
    weakest = min(results, key=lambda r: r["guesses"])
    guesses = float(weakest["guesses"])
    if guesses >= MIN_GUESSES:
        return Verdict(guesses, None)
    weak = [r for r in results if r["guesses"] < MIN_GUESSES]
    if any(m.get("dictionary_name") == "user_inputs" for r in weak for m in r["sequence"]):
        return Verdict(guesses, "password_personal")
    return Verdict(guesses, _reason(weakest["sequence"]))


def _forms(typed: str) -> list[str]:
    """The password as typed, without diacritics, and with its word breaks taken out.

    Vietnamese writes every syllable apart ("mật khẩu"), so a phrase of common words is
    as weak as the words run together, whatever stands between them.
    """
    forms = [typed]
    folded = fold(typed)
    if folded != typed.lower():
        forms.append(folded)
    joined = _BREAKS.sub("", folded)
    if joined and joined != folded:
        forms.append(joined)
    return forms


def _reason(sequence: list[dict]) -> str:
    """Name the weakness a clerk can act on: the largest part the guesser finds first."""
    found = [m for m in sequence if m["pattern"] != "bruteforce"]
    if not found:
        return "password_weak"
    largest = max(found, key=lambda m: len(m["token"]))
    if largest["pattern"] in _REASONS:
        return _REASONS[largest["pattern"]]
    source = largest.get("dictionary_name")
    if source in _COMMON_LISTS:
        return "password_common"
    if source == VIETNAMESE:
        return "password_vietnamese"
    if source in _WORD_LISTS:
        return "password_words"
    return "password_weak"
