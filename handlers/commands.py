"""Parsing chat commands (CONTRACT §5) in both scripts, full- or half-width."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

LABEL_WORDS = {
    "consultation": "consultation",
    "諮詢": "consultation",
    "咨询": "consultation",
    "咨詢": "consultation",
    "suggestion": "suggestion",
    "建議": "suggestion",
    "建议": "suggestion",
    "report": "report",
    "報警": "report",
    "报警": "report",
    "help": "help",
    "求助": "help",
    "dispute": "dispute",
    "糾紛": "dispute",
    "纠纷": "dispute",
    "調解": "dispute",
    "调解": "dispute",
    "other": "other",
    "其他": "other",
}

_ID = r"[A-Za-z]\d{4,6}"  # a ticket code's letter and digits
# "#J3811 答复:明天上午…": the word is the command's, not the answer's (the resident got
# "答复:答复:明天上午…"); without its colon it stays ("回复你一下" is words).
_ANSWER_WORD = r"(?:(?:答[复覆]|回[复覆])\s*[:：]\s*)?"
_CODE = rf"#?\s*(?P<code>{_ID})"
_CODE2 = rf"#?\s*(?P<code2>{_ID})"
# Words after a rating, set off by a space or punctuation ("满意吗" is a question, no rating),
# or starting with an emoji or a WeChat sticker code: "满意👍", "满意[强]" were no rating at all;
# thanks may follow at once ("满意了谢谢").
_EMOJI = r"\[\u2600-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff"
_THANKS = r"謝|谢|感謝|感谢|多謝|多谢"
_REASON = rf"(?:(?:[\s,，、:：;；]+|(?=[{_EMOJI}]|{_THANKS}))(?P<text>\S.*))?"
# How residents rate: "很满意", "基本满意", "我挺满意的"; "不太满意", "不是很满意", "非常不满意"
# are complaints (they were no rating, and the complaint was lost without a reply).
_SELF = r"(?:我|我們|我们)?(?:都|也)?"
_SATISFIED = (
    rf"{_SELF}(?:非常|很|挺|蠻|蛮|十分|比較|比较|基本上?|還算|还算|還|还|算|都)?(?:滿意|满意)"
)
_UNSATISFIED = (
    rf"{_SELF}(?:(?:非常|很|十分|特別|特别|極|极|挺|蠻|蛮|太)不"
    r"|不(?:太|大|是很|是太|怎麼|怎么|算|夠|够)?)(?:滿意|满意)"
)
# A final particle: "满意了", "满意吧", "挺满意的", "還算滿意啦" read no rating, and the
# resident heard nothing. Questions ("满意吗", "满意么") are not among them.
_PARTICLE = r"(?:[了啦的啊呀哦喔哈吧嘞咯滴])*"
# Neither: "一般", "还行". Answered with how to rate when a rating is awaited, never rated.
LUKEWARM = re.compile(
    rf"^(?:一般般?|還行|还行|還可以|还可以|馬馬虎虎|马马虎虎|湊合|凑合)"
    rf"[吧啦了呀啊]*[\s!！。.~～…]*(?:[{_EMOJI}]\S*)?$"
)
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    # 接單 takes several codes at once ("接單 #K5156 #V9932"), each taken in turn.
    (
        "ack",
        re.compile(rf"^(?:接單|接单)\s*{_CODE}(?P<codes>(?:[\s,，、]*#?\s*{_ID})*)\s*$"),
    ),
    ("close", re.compile(rf"^(?:結案|结案)\s*{_CODE}(?:\s*[:：,，]?\s*(?P<text>.*))?$", re.S)),
    ("transfer", re.compile(rf"^(?:轉派|转派)\s*{_CODE}\s+(?P<officer>[\w.\-]+)$")),
    ("classify", re.compile(rf"^(?:分類|分类)\s*{_CODE}\s+(?P<label>\S+)$")),
    ("todo", re.compile(r"^(?:待辦|待办)$")),
    # Ratings before answers: "#A1023 滿意" is a resident's rating, not an officer's reply.
    # A rating may carry words after it ("满意 谢谢王警官👍", "不满意,根本没人来看"): they are
    # the resident's reason, not another message.
    (
        "satisfied",
        re.compile(
            rf"^(?:{_CODE}\s*)?{_SATISFIED}{_PARTICLE}(?:\s*{_CODE2})?[!！。.~～,，]*{_REASON}$",
            re.S,
        ),
    ),
    (
        "unsatisfied",
        re.compile(
            rf"^(?:{_CODE}\s*)?{_UNSATISFIED}{_PARTICLE}(?:\s*{_CODE2})?[!！。.~～,，]*{_REASON}$",
            re.S,
        ),
    ),
    (
        "answer",
        re.compile(rf"^#\s*(?P<code>{_ID})\s*[:：,，]?\s*{_ANSWER_WORD}(?P<text>.+)$", re.S),
    ),
    # 查詢 alone asks after all of one's open matters; several codes after each of them.
    (
        "query",
        re.compile(
            rf"^(?:查詢|查询|查)(?:\s*(?:#\s*)?(?P<codes>{_ID}(?:[\s,，、]*#?\s*{_ID})*))?\s*$"
        ),
    ),
    ("contact", re.compile(rf"^(?:聯繫|联系|電話|电话)\s*{_CODE}$")),
]


_RATINGS = ("satisfied", "unsatisfied")


@dataclass(frozen=True)
class Command:
    name: str
    code: str | None = None
    text: str = ""
    officer: str | None = None
    label: str | None = None
    codes: tuple[str, ...] = ()  # 查詢's codes, when several (or none: every open one)


def clean(text: str) -> str:
    """Full-width to half-width (＃ → #, full-width spaces), drop leading @-mentions, trim."""
    text = unicodedata.normalize("NFKC", text).strip()
    text = re.sub(r"^(?:@\S+[\s\u2005]*)+", "", text)  # "@連心 接單 #A1023"
    return text.strip()


def _as_written(raw: str, code: str, cleaned: str) -> str:
    """The free text after ``code`` as the officer wrote it.

    Commands are matched on the NFKC-cleaned text, but that also turns the officer's "，" and "："
    into "," and ":" — the resident must get the words as written. Falls back to the cleaned
    text when the code itself was typed in full-width characters."""
    match = re.search(rf"{re.escape(code)}\s*[:：,，]?\s*{_ANSWER_WORD}", raw, re.I)
    return raw[match.end() :].strip() if match else cleaned


# "#A2065" alone: an answer with its words left out.
_BARE_CODE = re.compile(rf"^#\s*(?P<code>{_ID})\s*[:：,，]?$")
# "定級 #ZZZZZ 紅", "#A12 好的": a command's code that no ticket can have.
_SOME_CODE = re.compile(r"^(?:[^\s#]{2,4}\s*)?#\s*(?P<code>[A-Za-z0-9]+)")


@dataclass(frozen=True)
class NearMiss:
    """What is wrong with a message meant as a command: ``reason`` names the sentence."""

    reason: str  # "answer_needs_text" | "bad_code"
    code: str


def near_miss(text: str) -> NearMiss | None:
    """Why ``text``, which :func:`parse` took for no command, still reads as one: a ticket code
    with no answer after it, or a code that is not a ticket code's shape."""
    body = clean(text)
    bare = _BARE_CODE.match(body)
    if bare is not None:
        return NearMiss("answer_needs_text", bare.group("code").upper())
    some = _SOME_CODE.match(body)
    if some is not None and not re.fullmatch(_ID, some.group("code")):
        return NearMiss("bad_code", some.group("code"))
    return None


def parse(text: str) -> Command | None:
    """The command in ``text``, if it is one."""
    body = clean(text)
    for name, pattern in _PATTERNS:
        match = pattern.match(body)
        if match is None:
            continue
        groups = match.groupdict()
        codes = re.findall(_ID, groups.get("codes") or "")
        code = groups.get("code") or groups.get("code2") or (codes[0] if codes else None)
        free = (groups.get("text") or "").strip()
        return Command(
            name=name,
            code=code.upper() if code else None,
            # An officer's words as written; a rating's reason is only what follows the rating.
            text=_as_written(text, code, free) if free and code and name not in _RATINGS else free,
            officer=groups.get("officer"),
            label=groups.get("label"),
            codes=tuple(c.upper() for c in codes),
        )
    return None
