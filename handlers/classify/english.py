"""Messages written in English only (a foreign resident, a student): the model knows Chinese,
so what it would read here is noise. A few plain words decide instead, and every message of a
few words becomes a matter an officer reads, never chatter dropped without an answer.

Mixed messages ("救命 fire!!") are Chinese: the rules and the model read them as usual.
"""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# Danger now, in the words people use (text is lower-case: normalised).
_DANGER = re.compile(
    r"^help\b(?! (?:us|me) (?:to|with|find|know|understand|get|check))|\bhelp\s*(?:!|$)"
    r"|\bhelp (?:us|me)\b(?! (?:to|with|find|know|understand|get|check))"
    r"|\b(?:sos|fire|smoke|burning|stab(?:bed|bing)?|knife|gun|shoot(?:ing)?|beat(?:ing)?"
    r"|attack(?:ed|ing)?|rob(?:bed|bery|bing)?|kidnap(?:ped)?|drown(?:ing)?|bleeding"
    r"|unconscious|not breathing|overdose|suicide|kill(?:ing)?|hurt(?:ing)?|emergency)\b"
)
# Told as over, asked about or imagined: no danger now.
_CALM = re.compile(r"\b(?:yesterday|last (?:night|week|month)|what if|how (?:do|can|to)|drill)\b")
_REPORT = re.compile(
    r"\b(?:stole|stolen|steal|theft|thief|burglar\w*|broke into|scam\w*|fraud|cheated|lost)\b"
)
# Fewer words are a greeting or thanks ("hi", "ok").
MIN_WORDS = 3
# Thanks, greetings, goodbyes: chatter, however many words ("thank you so much everyone").
_CHATTER = re.compile(
    r"\b(?:thanks?|thank you|thx|hi|hello|hey|good (?:morning|night|evening|afternoon)|ok(?:ay)?"
    r"|bye|see you|lol|haha\w*|cheers|welcome|congrat\w*|happy \w+ day|merry)\b"
)
_CHATTER_WORDS = 12


def english_only(norm: str) -> bool:
    """Whether normalised text is Latin words with no Chinese at all."""
    return _CJK.search(norm) is None and _WORD.search(norm) is not None


def english_verdict(norm: str) -> tuple[bool, str]:
    """``(emergency, label)`` for an English-only message (:func:`english_only`)."""
    words = _WORD.findall(norm)
    if _DANGER.search(norm) and not _CALM.search(norm):
        return True, "help"
    if len(words) < MIN_WORDS:
        return False, "other"
    if _CHATTER.search(norm) and len(words) <= _CHATTER_WORDS and "?" not in norm:
        return False, "other"
    if _REPORT.search(norm):
        return False, "report"
    return False, "consultation"
