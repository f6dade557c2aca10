"""Messages written in English only (a foreign resident, a student), or in pinyin (a phone
without a Chinese keyboard, a panicked thumb): the model knows Chinese characters, so what it
would read here is noise. A few plain words decide instead, and every message of a few words
becomes a matter an officer reads, never chatter dropped without an answer.

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
    # A child or an elder gone (a newcomer's trial, 2026-12-07: "my son is missing, 6 years
    # old, lost him at the market"); a wallet or a cat missing is a report.
    r"|\b(?:son|daughter|child|kid|boy|girl|baby|toddler|grand\w+|mom|mother|dad|father)"
    r"(?: is| has gone| went| got)? missing\b"
    r"|\blost (?:my )?(?:son|daughter|child|kid|boy|girl|baby|toddler|him|her)\b"
    r"|\bmissing (?:child|kid|boy|girl|baby|toddler)\b"
    r"|\bcan'?t find (?:my )?(?:son|daughter|child|kid|boy|girl|baby|toddler)\b"
)
# Pinyin cries, toneless, syllables spaced or not (a newcomer's trial, 2026-12-07: zhao huo le
# kuai lai, wo jia xiao hai bu jian le, jiuming a you ren diao jin shui tang li le). Only
# phrases no English sentence and no harmless pinyin phrase has: not "na dao" (拿到/拿刀),
# "kan ren" (看人/砍人), "liu xue" (留学/流血).
_PINYIN_DANGER = re.compile(
    r"\b(?:jiu ?ming|jiu ?huo|kuai ?lai ?ren|jiu ?jiu ?(?:wo|ta))\b"  # 救命 救火 快来人 救救我
    r"|\b(?:zhao|zhe|shi) ?huo ?(?:le|la|a)\b"  # 着火了 失火了 (not qi huo: 期货)
    r"|\b(?:xiao ?hai|hai ?zi|er ?zi|nv ?er|nu ?er|sun ?zi|wa ?wa|lao ?ren)"  # a child, an elder
    r" ?(?:bu ?jian|zou ?diu|zou ?shi|shi ?zong)"  # 不见 走丢 走失 失踪
    r"|\b(?:diao|die) ?(?:jin|dao)? ?(?:shui|he|hu|jing)|\b(?:luo|ni) ?shui\b"  # 掉进水 落水 溺水
    r"|\bsha ?ren ?(?:le|la|a)\b|\bqiang ?jie\b|\bjiao ?bu ?xing\b"  # 杀人了 抢劫 叫不醒
)
# A scam with money leaving now ("my mom is on the phone with a scammer right now and is about
# to transfer money"): the stop-the-transfer reply (rules.SCAM_NOW), as in Chinese.
_SCAM = re.compile(r"\b(?:scam\w*|fraud\w*|con ?man|fake (?:police|officer|bank))\b")
_MONEY_NOW = re.compile(
    r"\b(?:about to|going to|is|are|am|keeps?) (?:transfer|send|wir|pay)\w*"
    r"|\b(?:transferring|sending|wiring|paying) (?:\w+ )?(?:money|\d)"
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


def english_scam_now(norm: str) -> bool:
    """Whether an English-only message tells of money leaving a scam's victim now."""
    return bool(_SCAM.search(norm) and _MONEY_NOW.search(norm)) and not _CALM.search(norm)


def english_verdict(norm: str) -> tuple[bool, str]:
    """``(emergency, label)`` for an English-only message (:func:`english_only`)."""
    words = _WORD.findall(norm)
    if english_scam_now(norm):
        return True, "report"  # a wrongdoer: a report, as in the corpus
    if (_DANGER.search(norm) or _PINYIN_DANGER.search(norm)) and not _CALM.search(norm):
        return True, "help"
    if len(words) < MIN_WORDS:
        return False, "other"
    if _CHATTER.search(norm) and len(words) <= _CHATTER_WORDS and "?" not in norm:
        return False, "other"
    if _REPORT.search(norm):
        return False, "report"
    return False, "consultation"
