"""Every code the core hands the UI (statuses, flags, reasons) turned into the clerk's words.

The core speaks in stable codes (``waiting_details``, ``low_dpi``,
``cccd_province``); this table is the one place they become sentences, each
in the catalogues, and each error says what to do next.
"""

from __future__ import annotations

from edge.desk import DeskError
from edge.tui.i18n import N_, _, local_time

STATUS = {
    "unassigned": N_("No code yet"),
    "waiting_details": N_("Waiting for details"),
    "complete": N_("Complete"),
    "merged": N_("Merged"),
}

PORTAL_STATUS = {
    1: N_("Newly registered"),
    2: N_("Accepted"),
    3: N_("Not accepted"),
    4: N_("Being processed"),
    5: N_("More documents requested"),
    6: N_("Financial obligation requested"),
    7: N_("Withdrawn by the citizen"),
    8: N_("Processing stopped"),
    9: N_("Result ready"),
    10: N_("Result returned"),
}

SYNC_STATE = {
    "pending": N_("Waiting to sync"),
    "sent": N_("Sent, awaiting receipt"),
    "acknowledged": N_("Received by central"),
}

UPDATE = {
    "update.applied": N_("installed {time}"),
    "update.checked": N_("up to date ({time})"),
    "update.failed": N_("failed {time}: regional IT is told"),
    "update.refused": N_("refused {time}: regional IT is told"),
}

FLAGS = {
    "low_dpi": N_("Low resolution"),
    "blank": N_("Blank page"),
    "too_dark": N_("Too dark"),
    "too_light": N_("Too light"),
    "too_small": N_("Paper too small"),
    "skewed": N_("Skewed"),
    "not_colour": N_("Not in colour"),
}

QUARANTINE = {
    "empty": N_("The file is empty: scan the page again."),
    "truncated": N_("The file is incomplete (scanning or copying was interrupted): scan again."),
    "damaged": N_("The image is damaged: scan the page again."),
    "damaged_pdf": N_("The PDF file is damaged: scan the document again."),
    "no_pages": N_("The PDF file has no pages: scan the document again."),
    "not_an_image": N_(
        "The file is not a scan; it was taken out of the scanner folder. "
        "Discard it (X), or save it as PDF or JPEG and put it back."
    ),
    "unsupported": N_("The file format is not accepted: save as PDF, JPEG, PNG or TIFF."),
    "encrypted_pdf": N_("The PDF has a password: save it without one, or scan the paper."),
    "decompression_bomb": N_("The image claims an impossible size: scan again at 300 dpi."),
    "too_big_to_decode": N_("The image is too large for this box to open: scan again at 300 dpi."),
    "out_of_memory": N_(
        "The box ran out of memory opening this file: scan again at 300 dpi, "
        "or with fewer pages per file."
    ),
    "symlink": N_(
        "A link, not a file; it was taken out of the scanner folder. "
        "Copy the real file into the scanner folder."
    ),
    "special_file": N_(
        "Not an ordinary file; it was taken out of the scanner folder. Discard it (X)."
    ),
    "too_large": N_("The file is too large: scan fewer pages per file."),
    "vanished": N_("The file disappeared before it was read: scan again if needed."),
    "unreadable": N_("The file cannot be read: check the scanner folder, or scan again."),
}

SYNC_PROBLEM_DEFAULT = N_(
    "Central refused what the box sent; nothing is lost. Call regional IT if this stays."
)
_AWAY = N_("Central cannot be reached now: the box keeps everything and tries again by itself.")
_BUSY = N_("Central is busy or briefly down: the box tries again by itself.")
_NOT_KNOWN = N_("Central does not recognise this box: call regional IT.")

SYNC_PROBLEMS = {
    "unreachable": _AWAY,
    "busy": _BUSY,
    "unavailable": _BUSY,
    "rate_limited": _BUSY,
    "too_slow": _BUSY,
    "internal": _BUSY,
    "unauthenticated": _NOT_KNOWN,
    "unknown_device": _NOT_KNOWN,
    "bad_signature": _NOT_KNOWN,
    "token_invalid": _NOT_KNOWN,
    "token_used": _NOT_KNOWN,
    "wrong_office": _NOT_KNOWN,
    "device_revoked": N_("Central no longer accepts this box: call regional IT."),
    "stale_time": N_("The box's clock is wrong: call regional IT."),
    "dossier_claimed": N_(
        "Another office's box holds one of these dossier codes: call regional IT."
    ),
    "sync_state": N_("Sync is not set up on this box: call regional IT."),
}
"""The clerk's sentence for a failed sync round, by its stable code (``sync.last_error_code``).

Never central's own words: a problem body is not signed, so whatever answers at
central's URL could write anything there ("call this number now"). Its text stays
for the technician, escaped, in the sync screen's technical details.
"""

FIELDS = {
    "code": N_("Dossier code"),
    "procedure": N_("Procedure"),
    "full_name": N_("Citizen's name"),
    "cccd": N_("CCCD number"),
    "birth_year": N_("Year of birth"),
    "phone": N_("Phone"),
    "address": N_("Address"),
    "appointment": N_("Return date"),
    "note": N_("Note"),
    "channel": N_("Channel"),
    "receiver": N_("Received by"),
    "receiver_id": N_("ID paper number"),
}

SEARCH_HINTS = {
    "number_too_short": N_("Type at least 4 digits to search by CCCD or phone number."),
    "index_rebuilding": N_(
        "The search index is being updated after the upgrade: a part of a CCCD or phone "
        "number may not find every dossier yet."
    ),
}
"""What the search screen says when the desk's search gives a hint (``SearchResult.hint``)."""

REVIEW_WHY = {
    "unconfirmed": N_("not confirmed"),
    "no_pattern": N_("not a code's shape"),
    "two_codes": N_("two codes on one page"),
    "unreadable": N_("a barcode the box could not read at all"),
}
"""Why capture could not trust a cover's symbol (``review[].why`` in ``dossier.created``)."""

ID_CARD_WARNINGS = {
    "unknown_province": N_("the first 3 digits are not a province code"),
    "century_mismatch": N_("the number's century digit does not match the birth date"),
    "birth_year_mismatch": N_("the number does not match the year of birth"),
    "sex_mismatch": N_("the number does not match the sex"),
    "sex_unknown": N_("the sex could not be read"),
    "old_number_invalid": N_("the old ID number is not valid"),
    "issued_before_birth": N_("the issue date is before the birth date"),
    "future_birth": N_("the birth date is in the future"),
    "issued_in_future": N_("the issue date is in the future"),
}
"""What ``edge.symbols.parse_id_card`` found odd on an ID card's QR, for the clerk to check."""

SYMBOLOGY = {
    "qr": "QR",
    "qrcode": "QR",
    "microqr": "Micro QR",
    "datamatrix": "Data Matrix",
    "aztec": "Aztec",
    "pdf417": "PDF417",
    "code128": "Code 128",
    "code39": "Code 39",
    "code93": "Code 93",
    "codabar": "Codabar",
    "itf": "ITF",
    "ean13": "EAN-13",
    "ean8": "EAN-8",
    "upca": "UPC-A",
}

ERRORS = {
    "wrong_password": N_("Wrong user name or password. Check Caps Lock and try again."),
    "dossier_missing": N_("This dossier no longer exists. Go back to the list."),
    "dossier_merged": N_("This dossier was merged into another. Open that one instead."),
    "fee_amount_invalid": N_("Type the amount in đồng, digits only, at most 100.000.000."),
    "fee_amount_zero": N_("There is nothing to collect: type the amount, or choose 3 (exempt)."),
    "fee_mode_invalid": N_("Choose how the fee is settled (1, 2 or 3) and its kind (1 or 2)."),
    "fee_not_due": N_("No fee is waiting to be collected for this dossier."),
    "fee_paid": N_("This fee was collected and has its receipt: it can no longer be changed."),
    "fee_reason_missing": N_("Give the reason for the exemption: F2 lists the usual ones."),
    "fee_reason_too_long": N_("Keep the reason short, on one line: at most 80 characters."),
    "fee_unpaid": N_("The fee is still to be collected: press T again to collect it first."),
    "already_complete": N_("This dossier is already complete and cannot be changed."),
    "code_invalid": N_("This is not a valid dossier code. Copy it exactly from the receipt."),
    "code_fixed": N_("This dossier already has a code from its receipt slip."),
    "channel_invalid": N_(
        "The channel is 1 (in person), 2 (online) or 3 (public postal service): type one of them."
    ),
    "code_taken": N_("Another dossier already has this code."),
    "review_done": N_("This dossier was already checked. Go back to the list."),
    "review_no_previous": N_(
        "There is no dossier before this one in the scan. Type the code on the receipt."
    ),
    "procedure_unknown": N_("Unknown procedure. Press F2 to choose from the catalogue."),
    "name_invalid": N_("The name looks wrong. Type the citizen's full name."),
    "birth_year_invalid": N_("Year of birth must be 4 digits, e.g. 1985."),
    "birth_year_future": N_("The year of birth is in the future. Check the ID card."),
    "birth_year_old": N_("The year of birth is before 1900. Check the ID card."),
    "date_past": N_("The return date is already past. Choose today or a later day."),
    "not_complete": N_("This dossier is not complete: there is nothing to reopen."),
    "already_handed_over": N_(
        "The paper of this dossier went back to the agency: it can no longer be reopened."
    ),
    "target_missing": N_("The dossier to merge into no longer exists. Check the code."),
    "task_changed": N_(
        "This task was already done, or the agency sent a newer status. The list is refreshed."
    ),
    "task_not_payment": N_(
        "Only a payment is marked done by hand: scan missing papers into the dossier (F4), "
        "or hand the paper back (T)."
    ),
    "cccd_length": N_("The CCCD number must have 12 digits. Check the card."),
    "cccd_digits": N_("The CCCD number may contain digits only. Check the card."),
    "cccd_province": N_("The first 3 digits are not a province code. Check the card."),
    "cccd_birth_year": N_("The CCCD number does not match the year of birth. Check both."),
    "cccd_sex": N_("The CCCD number does not match the sex. Check the card."),
    "cccd_future": N_("The CCCD number gives a birth year in the future. Check the card."),
    "phone_invalid": N_("The phone number must be 10 or 11 digits starting with 0."),
    "date_invalid": N_("Write the date as dd/mm/yyyy, e.g. 15/07/2025."),
    "address_too_long": N_("The address is too long. Keep it under 200 characters."),
    "note_too_long": N_("The note is too long. Keep it under 500 characters."),
    "pages_changed": N_("The pages changed meanwhile. Look again and repeat."),
    "page_deleted": N_("This page was deleted. D shows deleted pages; U restores one."),
    "page_purged": N_(
        "This page's scan is kept at central only (retention): it cannot move to another dossier."
    ),
    "document_invalid": N_("Choose one of the procedure's documents and how it was given."),
    "procedure_first": N_("Choose the procedure first (F2): pages are tagged with its documents."),
    "split_first_page": N_("Choose the page where the second dossier starts, not the first."),
    "same_dossier": N_("A dossier cannot be merged into itself."),
    "no_pages": N_("This dossier has no pages. Scan them first."),
    "no_result": N_("Central has not sent a result for this dossier yet."),
    "already_handed_back": N_("This result was already handed back."),
    "nothing_to_hand_over": N_("No completed dossiers are waiting to go back to the agency."),
    "handover_changed": N_("The list changed meanwhile. Look again and repeat."),
    "quarantine_changed": N_("This file was already dealt with. The list is refreshed."),
    "quarantine_no_original": N_("Nothing was kept of this file: scan the document again."),
    "no_inbox": N_("The scanner folder is unknown: ask regional IT to start the box service."),
    "nothing_handed_over": N_("Nothing was handed over on this date. Check the date."),
    "font_missing": N_("The DejaVu font is missing: ask regional IT to install fonts-dejavu-core."),
    "pdf_failed": N_("The PDF could not be written: check free disk space, then try again."),
    "no_printer": N_(
        "No printer is set up on this box: copy the list to a USB stick (U) and print it elsewhere."
    ),
    "print_failed": N_("The printer did not take the file: check it is on, then press P again."),
    "no_stick": N_("No USB stick found: plug one in, wait a few seconds, then press U again."),
    "stick_read_only": N_(
        "The USB stick cannot be written (full or read-only): try another stick."
    ),
    "locked": N_("The desk is locked: sign in again."),
    "password_short": N_("The password must have at least 8 characters."),
    "password_common": N_(
        "This password is among the most used ones. Choose a phrase of 4 unrelated words."
    ),
    "password_personal": N_(
        "The password contains your user name or the office code. Leave them out."
    ),
    "password_vietnamese": N_(
        "The password is made of common Vietnamese words or names. Add unrelated words."
    ),
    "password_words": N_("The password is made of common words or names. Add unrelated words."),
    "password_repeats": N_(
        "The password repeats characters (like “aaa” or spaces). Use 4 unrelated words."
    ),
    "password_sequence": N_(
        "The password is a sequence (like 1234 or abcd). Use 4 unrelated words."
    ),
    "password_keyboard": N_(
        "The password follows the keyboard (like qwerty). Use 4 unrelated words."
    ),
    "password_date": N_(
        "The password is mostly a date or a year, which is guessed early. Add unrelated words."
    ),
    "password_weak": N_("The password is too easy to guess. Make it longer: 4 unrelated words."),
    "password_same": N_("That is the password you were given. Choose a new one of your own."),
}


def status_label(status: str) -> str:
    return _(STATUS[status]) if status in STATUS else status


def portal_label(code: int | None) -> str:
    return _(PORTAL_STATUS[code]) if code in PORTAL_STATUS else "—"


def sync_label(state: str) -> str:
    return _(SYNC_STATE[state]) if state in SYNC_STATE else state


def update_label(last: tuple[str, str] | None) -> str:
    """The newest update attempt in a few words, or that there was none."""
    if last is None:
        return _("none yet")
    kind, at = last
    return _(UPDATE[kind]).format(time=local_time(at)) if kind in UPDATE else kind


def update_attention(last: tuple[str, str] | None) -> bool:
    return last is not None and last[0] in ("update.failed", "update.refused")


def flag_label(flag: str) -> str:
    return _(FLAGS[flag]) if flag in FLAGS else flag


def quarantine_label(reason: str) -> str:
    return _(QUARANTINE[reason]) if reason in QUARANTINE else reason


def sync_problem(code: str | None) -> str:
    return _(SYNC_PROBLEMS.get(code or "", SYNC_PROBLEM_DEFAULT))


def search_hint(hint: str | None) -> str:
    return _(SEARCH_HINTS[hint]) if hint in SEARCH_HINTS else ""


def field_label(name: str) -> str:
    return _(FIELDS[name]) if name in FIELDS else name


def explain(error: DeskError) -> str:
    """One line: what is wrong and what to do next."""
    seconds = int(error.details.get("seconds", 0) or 0)
    if error.reason == "locked_out":
        minutes = max(1, (seconds + 59) // 60)
        return _("Too many wrong passwords: sign-in is locked for {minutes} min.").format(
            minutes=minutes
        )
    if error.reason == "wait":
        return _("Please wait {seconds} s before trying again.").format(seconds=seconds)
    if error.reason == "wrong_password" and seconds:
        return _("Wrong user name or password. Wait {seconds} s, then try again.").format(
            seconds=seconds
        )
    fields = error.details.get("fields") or []
    if error.reason == "missing" and len(fields) > 1:
        return _("Fill in first: {fields}.").format(
            fields=", ".join(field_label(str(f)) for f in fields)
        )
    if error.reason == "missing" and error.field:
        return _("Fill in “{field}” first.").format(field=field_label(error.field))
    if error.reason == "target_merged":
        return _("Dossier {code} was merged into another: merge into that one instead.").format(
            code=error.details.get("code") or _("(no code)")
        )
    if error.reason in ERRORS:
        return _(ERRORS[error.reason])
    return _("Something went wrong ({code}). Try again, or call regional IT.").format(
        code=error.reason
    )


def review_why(why: str) -> str:
    return _(REVIEW_WHY[why]) if why in REVIEW_WHY else ""


def id_card_warning(code: str) -> str:
    return _(ID_CARD_WARNINGS[code]) if code in ID_CARD_WARNINGS else code


def symbology_label(name: str) -> str:
    """A decoder's symbology name as printed on the box's manuals ("Code 128", "QR")."""
    key = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum())[:20]
    return SYMBOLOGY.get(key, key.upper())


# What `edge scan` reports went wrong (edge.capture.scanner.ScanProblem), for the scan key;
# the English is the scanner module's own line, so the CLI and the UI say the same thing.
SCAN_PROBLEMS = {
    "no_scanner": N_("No scanner found. Check its cable and power, then try again."),
    "device_gone": N_(
        "The scanner stopped answering. Check its cable and power, then scan the rest again."
    ),
    "paper_jam": N_("Paper jam. Open the scanner, remove the sheet, then scan the rest."),
    "feeder_empty": N_("The feeder is empty. Put the pages in the feeder and try again."),
    "cover_open": N_("The scanner's cover is open. Close it and scan the rest again."),
    "device_busy": N_("The scanner is busy. Wait a moment and try again."),
    "permission_denied": N_(
        "The box may not use this scanner. Call regional IT (scanner permissions)."
    ),
    "no_feeder": N_("This scanner has no document feeder. Scan from the glass instead."),
    "no_flatbed": N_("This scanner has no glass. Put the pages in the feeder instead."),
    "no_duplex": N_("This scanner cannot scan both sides. Scan one side only."),
    "scan_running": N_("Another scan is running. Wait for it to finish."),
    "sane_missing": N_("Scanning is not installed on this box. Call regional IT."),
    "stopped": N_("Scanning was stopped. Scan the remaining pages again."),
    "interrupted": N_("A scan was interrupted (power cut?). Check its last pages."),
    "scan_failed": N_("The scan failed. Try again; if it repeats, call regional IT."),
}


def scan_problem(code: str) -> str:
    """The clerk's sentence for a scan problem code; an unknown code reads as a failed scan."""
    return _(SCAN_PROBLEMS.get(code, SCAN_PROBLEMS["scan_failed"]))
