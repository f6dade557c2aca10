"""Names and mobile numbers: normalising them, and the keyed hashes they are looked up by."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

from bot.pii import PiiCipher
from bot.texts import simplified

# --- identity: names and numbers --------------------------------------------------------------

NAME_MIN, NAME_MAX = 2, 20
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
_NAME_CHARS = re.compile(rf"[{_CJK}{_LATIN}· ]+")
_HAS_LATIN = re.compile(rf"[{_LATIN}]")
# People type the middle dot of 阿卜杜·热合曼 in many ways; one form makes names comparable.
_DOTS = str.maketrans(dict.fromkeys("•‧・･∙⋅●", "·"))
_MAINLAND_MOBILE = re.compile(r"1[3-9]\d{9}")


class IdentityError(ValueError):
    """A name or number that cannot be used; ``key`` is the sentence that explains why."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def normalise_text(text: str) -> str:
    """NFKC (full-width digits, spaces, colons → ASCII) and one middle dot."""
    return unicodedata.normalize("NFKC", text).translate(_DOTS)


def check_name(raw: str) -> str:
    """A real name, tidied: 2–20 CJK or Latin letters, ``·``; spaces only in Latin names."""
    name = re.sub(r"\s+", " ", normalise_text(raw)).strip()
    ok = (
        NAME_MIN <= len(name) <= NAME_MAX
        and _NAME_CHARS.fullmatch(name) is not None
        and not name.startswith("·")
        and not name.endswith("·")
        and "··" not in name
        and (" " not in name or _HAS_LATIN.search(name) is not None)
    )
    if not ok:
        raise IdentityError("verify_bad_name")
    return name


def normalise_phone(raw: str) -> str:
    """A mainland mobile number as 11 digits (``+86``, ``0086``, spaces and dashes removed)."""
    cleaned = re.sub(r"[\s\-()]", "", normalise_text(raw))
    if not cleaned or not re.fullmatch(r"\+?\d{6,16}", cleaned):
        raise IdentityError("verify_bad_phone")
    try:
        parsed = phonenumbers.parse(cleaned, "CN")
    except phonenumbers.NumberParseException:
        raise IdentityError("verify_bad_phone") from None
    national = str(parsed.national_number)
    if parsed.country_code != 86 or not _MAINLAND_MOBILE.fullmatch(national):
        raise IdentityError("verify_bad_phone")
    return national


def name_key(name: str) -> str:
    """What two spellings of one name share: Simplified script, case-folded (張三 == 张三)."""
    return simplified(re.sub(r"\s+", " ", normalise_text(name)).strip()).casefold()


def phone_hash(cipher: PiiCipher, phone: str) -> str:
    """The look-up hash of a normalised number (bindings, codes, households)."""
    return cipher.lookup_hash(phone)


def name_hash(cipher: PiiCipher, name: str) -> str:
    """The look-up hash of a name, script- and case-insensitive."""
    return cipher.lookup_hash(name_key(name))


def code_hash(cipher: PiiCipher, member_id: int, code: str) -> str:
    """Keyed, so six digits cannot be brute-forced from a stolen database."""
    return cipher.lookup_hash(f"verification-code:{member_id}:{code}")
