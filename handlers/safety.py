"""The kind of danger a message names, and the number its safety reply tells the resident to
call first: fire 119, an injury or illness 120, money leaving a victim now 110 and 96110,
everything else 110. Emergencies' replies and pages say it; merges compare kinds with it."""

from __future__ import annotations

import re

from handlers.classify import SCAM_NOW, Classification, normalise

_FIRE = re.compile(r"火|烟|燃|烧|爆炸|煤气|燃气|天然气|液化气|\bfire\b|\bsmoke|\bburning\b")
_MEDICAL = re.compile(
    r"晕|昏|倒地|不醒|没气|没呼吸|抽搐|抽风|吐血|流血|出血|中毒|心脏|喘不|摔|骨折|受伤"
    r"|\bunconscious\b|\bnot breathing\b|\bbleeding\b|\boverdose\b"
)


# An injury from violence is the police's first (110), not the ambulance's.
_VIOLENCE = re.compile(r"刀|枪|砍|捅|打|抢|绑|杀|knife|gun|stab|beat")


# The number each safety reply tells the resident to call first; officers' pages say the same.
FIRST_NUMBER = {
    "emergency_reply": "110",
    "emergency_reply_fire": "119",
    "emergency_reply_medical": "120",
    "emergency_reply_fraud": "110",  # and 96110, the anti-fraud line, in the same sentence
}


def safety_reply_key(text: str, result: Classification | None = None) -> str:
    """Fire first names 119, an injury or illness 120, money leaving a victim now says stop
    the transfer (110, 96110), everything else 110."""
    if result is not None and SCAM_NOW in result.matched:
        return "emergency_reply_fraud"
    return reply_key_of(normalise(text))


def reply_key_of(plain: str) -> str:
    """:func:`safety_reply_key` of normalised text."""
    if _FIRE.search(plain):
        return "emergency_reply_fire"
    if _MEDICAL.search(plain) and not _VIOLENCE.search(plain):
        return "emergency_reply_medical"
    return "emergency_reply"
