"""How alike two residents' messages are: shared content bigrams (intake merges reports of one
incident with it; alerts recognise answers to a notice with it)."""

from __future__ import annotations

import re

from handlers.classify import normalise

# Characters that carry grammar, not content: "被偷了" is in every theft report.
_FUNCTION_CHARS = set(
    "了的被我你他她它们是在有人也都就还吗呢啊吧呀个一这那和与及把让给着过很太又再才"
)


# Cries and calls for help name no thing: two residents' "快来" are not one incident.
_CRIES = {"快来", "来人", "救命", "报警", "快点", "赶快", "赶紧", "紧急", "求救", "求助", "帮忙"}


# Where and when, said of every matter a neighbour raises (我家门口, 楼下, 一个月了, 天天): two
# residents' street lamp and rubbish share them and are still two matters (a newcomer found
# them merged, with one answer to both).
_GENERIC = {
    "家门", "门口", "楼下", "楼上", "楼道", "小区", "村里", "隔壁", "对面", "附近", "旁边",
    "天天", "每天", "今天", "昨天", "晚上", "早上", "白天", "半夜", "现在", "刚才", "最近",
    "一直", "好几", "几天", "个月", "时候", "我们", "大家", "邻居", "谢谢", "麻烦", "请问",
    "警官", "民警", "派出", "出所",
}  # fmt: skip


_URL = re.compile(r"\S+://\S+")


def _bigrams(text: str) -> set[str]:
    # A link names no thing either: two photos from one bridge share its host's letters.
    chars = re.sub(r"\W", "", normalise(_URL.sub(" ", text)))
    return {
        chars[i : i + 2]
        for i in range(len(chars) - 1)
        if chars[i] not in _FUNCTION_CHARS
        and chars[i + 1] not in _FUNCTION_CHARS
        and chars[i : i + 2] not in _CRIES
        and chars[i : i + 2] not in _GENERIC
    }


def similarity(a: str, b: str) -> float:
    """Share of the shorter message's content bigrams found in the other (overlap
    coefficient): two residents describing one incident at different lengths still match."""
    x, y = _bigrams(a), _bigrams(b)
    return len(x & y) / min(len(x), len(y)) if x and y else 0.0


def passes_on(text: str, notice: str) -> bool:
    """Whether ``text`` is ``notice`` passed on ("转发:寻找走失儿童…", "扩散!…大家帮忙转发"):
    most of the notice's content, and next to nothing of its own. A sighting in the notice's
    words ("穿红色外套的男孩刚才在我家门口") carries too little of it."""
    mine, theirs = _bigrams(text), _bigrams(notice)
    if not theirs:
        return False
    return len(mine & theirs) >= _COPY_SHARE * len(theirs) and len(mine - theirs) <= _COPY_SLACK


# A copy keeps most of a notice (it may be cut), and adds a word or two: 转发, 扩散.
_COPY_SHARE = 0.6
_COPY_SLACK = 3


def names_nothing(text: str) -> bool:
    """Whether ``text`` names no thing at all: a cry ("快来啊!!", "救命"), no content bigram."""
    return not _bigrams(text)
