"""The desk's one error: something the clerk can fix, named by a stable code."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class DeskReason(StrEnum):
    """Every reason the desk gives: a closed set, so a misspelt reason fails where it is
    raised instead of reaching the clerk as "Something went wrong". Each has the clerk's
    sentence in edge/tui/messages.py, in both catalogues (tests/test_reasons.py)."""

    ADDRESS_TOO_LONG = "address_too_long"
    ALREADY_COMPLETE = "already_complete"
    ALREADY_HANDED_BACK = "already_handed_back"
    ALREADY_HANDED_OVER = "already_handed_over"
    BIRTH_YEAR_FUTURE = "birth_year_future"
    BIRTH_YEAR_INVALID = "birth_year_invalid"
    BIRTH_YEAR_OLD = "birth_year_old"
    CCCD_BIRTH_YEAR = "cccd_birth_year"
    CCCD_DIGITS = "cccd_digits"
    CCCD_FUTURE = "cccd_future"
    CCCD_LENGTH = "cccd_length"
    CCCD_PROVINCE = "cccd_province"
    CCCD_SEX = "cccd_sex"
    CHANNEL_INVALID = "channel_invalid"
    CODE_FIXED = "code_fixed"
    CODE_INVALID = "code_invalid"
    CODE_TAKEN = "code_taken"
    DATE_INVALID = "date_invalid"
    DATE_PAST = "date_past"
    DOCUMENT_INVALID = "document_invalid"
    DOSSIER_MERGED = "dossier_merged"
    DOSSIER_MISSING = "dossier_missing"
    FEE_AMOUNT_INVALID = "fee_amount_invalid"
    FEE_AMOUNT_ZERO = "fee_amount_zero"
    FEE_MODE_INVALID = "fee_mode_invalid"
    FEE_NOT_DUE = "fee_not_due"
    FEE_PAID = "fee_paid"
    FEE_REASON_MISSING = "fee_reason_missing"
    FEE_REASON_TOO_LONG = "fee_reason_too_long"
    FEE_UNPAID = "fee_unpaid"
    FONT_MISSING = "font_missing"
    HANDOVER_CHANGED = "handover_changed"
    LOCKED = "locked"
    LOCKED_OUT = "locked_out"
    MISSING = "missing"
    NAME_INVALID = "name_invalid"
    NO_INBOX = "no_inbox"
    NO_PAGES = "no_pages"
    NO_PRINTER = "no_printer"
    NO_RESULT = "no_result"
    NO_STICK = "no_stick"
    NOT_COMPLETE = "not_complete"
    NOTE_TOO_LONG = "note_too_long"
    NOTHING_HANDED_OVER = "nothing_handed_over"
    NOTHING_TO_HAND_OVER = "nothing_to_hand_over"
    PAGE_DELETED = "page_deleted"
    PAGE_PURGED = "page_purged"
    PAGES_CHANGED = "pages_changed"
    PASSWORD_COMMON = "password_common"
    PASSWORD_DATE = "password_date"
    PASSWORD_KEYBOARD = "password_keyboard"
    PASSWORD_PERSONAL = "password_personal"
    PASSWORD_REPEATS = "password_repeats"
    PASSWORD_SAME = "password_same"
    PASSWORD_SEQUENCE = "password_sequence"
    PASSWORD_SHORT = "password_short"
    PASSWORD_VIETNAMESE = "password_vietnamese"
    PASSWORD_WEAK = "password_weak"
    PASSWORD_WORDS = "password_words"
    PDF_FAILED = "pdf_failed"
    PHONE_INVALID = "phone_invalid"
    PRINT_FAILED = "print_failed"
    PROCEDURE_FIRST = "procedure_first"
    PROCEDURE_UNKNOWN = "procedure_unknown"
    QUARANTINE_CHANGED = "quarantine_changed"
    QUARANTINE_NO_ORIGINAL = "quarantine_no_original"
    REVIEW_DONE = "review_done"
    REVIEW_NO_PREVIOUS = "review_no_previous"
    SAME_DOSSIER = "same_dossier"
    SPLIT_FIRST_PAGE = "split_first_page"
    STICK_READ_ONLY = "stick_read_only"
    TARGET_MERGED = "target_merged"
    TARGET_MISSING = "target_missing"
    TASK_CHANGED = "task_changed"
    TASK_NOT_PAYMENT = "task_not_payment"
    WAIT = "wait"
    WRONG_PASSWORD = "wrong_password"


class DeskError(Exception):
    """Something the clerk can fix; ``reason`` is a stable code the UI translates."""

    def __init__(self, reason: DeskReason, *, field: str | None = None, **details: Any) -> None:
        reason = DeskReason(reason)
        super().__init__(reason if field is None else f"{reason} ({field})")
        self.reason = reason
        self.field = field
        self.details = details
