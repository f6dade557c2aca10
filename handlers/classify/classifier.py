"""Normalise, ask the rules, ask the model, combine: one :class:`Classification` per message."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from handlers.classify import rules
from handlers.classify.model import DEFAULT_MODEL, LABELS, LinearModel, Scores
from handlers.classify.normalise import normalise

__all__ = ["Classification", "Classifier", "decide", "without_ticket_codes"]

# Labels that may carry an emergency: a fire reported with "请问" is still a fire.
_EMERGENCY_LABELS = ("report", "help")
_NOTHING = dict.fromkeys(LABELS, 0.0)
# A fragment (rules.FRAGMENT) keeps the model's label only with at least this decision margin.
FRAGMENT_MARGIN = 0.5
# A ticket code (#B0020) refers to a matter; it says nothing about what kind the words are,
# and no corpus message carries one ("#B0020 我好像看到过…" from a neighbour, "#B0020 谢谢").
_TICKET_CODE = re.compile(r"[#＃]\s*[A-Za-zＡ-Ｚａ-ｚ][0-9０-９]{4,6}(?![0-9０-９A-Za-z])")


def without_ticket_codes(text: str) -> str:
    """``text`` without our ticket codes (``#A1023``, full-width too)."""
    return _TICKET_CODE.sub(" ", text)


# Thanks at the end of a matter ("…请派人来看看,谢谢。") is manners, not chatter: the model read
# a blocked ditch as `other` with it and as `help` without (a newcomer's trial; appending ",谢谢"
# to the corpus's matters turned 0.4 % of them into chatter, ",謝謝。" 0.9 %). Normalised text.
_COURTESY_TAIL = re.compile(
    r"[\s,，。.!！~～]*(?:(?:谢谢|感谢|多谢|麻烦|辛苦|拜托)(?:了|啦)?"
    r"(?:你们|您们|您|你|大家|领导|警官|民警|警察|同志|师傅|了|啦)*[\s,，。.!！~～]*)+"
    r"[\s。.!！~～🙏👍😊]*$"
)
# What must be left for the thanks to be taken off: more than a greeting's worth, and no good
# news: thanks after it ("上次丢的手机找到了,谢谢大家") is what makes it chatter.
_MATTER_CHARS = 6
_GOOD_NEWS = re.compile(
    r"找到了|找回|回来了|解决了|修好了|弄好了|处理好了|没事了|平安|好了|抓到了|抓住了|已经"
)


def without_courtesy_tail(norm: str) -> str:
    """Normalised ``norm`` without trailing thanks, when a matter's worth of words is left
    and it is no good news."""
    match = _COURTESY_TAIL.search(norm)
    if match is None or match.start() < _MATTER_CHARS:
        return norm
    rest = norm[: match.start()]
    return norm if _GOOD_NEWS.search(rest) else rest


@dataclass(frozen=True)
class Classification:
    """The classifier's verdict on one message."""

    label: str  # one of LABELS
    emergency: bool
    confidence: float  # 0..1: the label's decision margin over the runner-up, capped at 1
    unclear: bool  # margin below the model's unclear margin (the label is still the best guess)
    scores: dict[str, float]  # the model's decision value per label
    matched: tuple[str, ...]  # what decided: rule concepts ("report:fraud_paid"), "model:…"
    emergency_probability: float = 0.0


def decide(
    verdict: rules.Verdict,
    scores: Scores | None,
    *,
    emergency_threshold: float,
    unclear_margin: float,
) -> Classification:
    """Combine the rules' verdict with the model's scores (``None``: the model was not asked).

    The rules win where they speak; an emergency is filed as a report or a help request, never as
    a question, a proposal or chatter; an emergency the model alone raises must be sure enough
    (``emergency_threshold``, chosen by cross-validation) to stand.
    """
    if scores is None:
        label, emergency = verdict.label or "other", bool(verdict.emergency)
        # Words the model cannot read (English): the officer is asked to check the category.
        unclear = rules.ENGLISH in verdict.concepts and label != "other" and not emergency
        return Classification(label, emergency, 1.0, unclear, _NOTHING, verdict.concepts)
    values = scores.label_scores
    ranked = sorted(LABELS, key=lambda lb: -values[lb])
    label = ranked[0]
    margin = values[ranked[0]] - values[ranked[1]]
    matched = list(verdict.concepts)
    emergency = scores.emergency_logit >= emergency_threshold
    if emergency and label not in _EMERGENCY_LABELS and verdict.checked:
        # Every emergency in the corpus is a report or a help request: the emergency model alone
        # does not overrule a label model that reads a dispute, a question, a proposal or chatter
        # (a quarrel at the door, "孩子吞纽扣怎么办", a joke); plain danger does (the rules).
        matched.append("model:emergency_overruled")
        emergency = False
    if emergency:
        matched.append("model:emergency")
    if verdict.emergency is not None and verdict.emergency != emergency:
        emergency = verdict.emergency
        matched.append("rule:emergency" if emergency else "rule:no_emergency")
    if verdict.label is not None and verdict.label != label:
        label, margin = verdict.label, 1.0
    elif verdict.fragment and margin < FRAGMENT_MARGIN and label != "other":
        # "23路", "在的": the model guesses at a few characters; an answer, not a new matter.
        label, margin = "other", 1.0
        matched.append("rule:fragment_other")
    if label == "other" and rules.SCAM_SCRIPT in verdict.concepts and not emergency:
        # A fraudster's script put before the police, even without a question, is asking
        # whether it is one: the warning goes out and an officer looks (not chatter).
        label, margin = "consultation", 1.0
        matched.append("rule:scam_script_consultation")
    if emergency and label not in _EMERGENCY_LABELS:
        # Never file danger now as a question, proposal or chatter.
        label = max(_EMERGENCY_LABELS, key=lambda lb: values[lb])
        matched.append(f"forced:{label}")
    return Classification(
        label=label,
        emergency=emergency,
        confidence=round(min(1.0, max(0.0, margin)), 3),
        unclear=margin < unclear_margin and verdict.label is None,
        scores={lb: round(v, 4) for lb, v in values.items()},
        matched=tuple(matched),
        emergency_probability=round(scores.emergency_probability, 4),
    )


@dataclass(frozen=True)
class Classifier:
    """The trained model behind the rule layer."""

    model: LinearModel
    # Off only to measure the model alone (``lianxin classify forward --model-only``).
    use_rules: bool = True

    @classmethod
    def from_file(cls, path: Path = DEFAULT_MODEL) -> Classifier:
        """The packaged model (``data/model.npz``) or another weights file."""
        return cls(LinearModel.load(path))

    def classify(self, text: str) -> Classification:
        """Classify one chat message (any script; up to the bridge's 20,000 characters)."""
        norm = without_courtesy_tail(normalise(without_ticket_codes(text)))
        verdict = rules.apply(norm) if self.use_rules else rules.Verdict(checked=False)
        # Text without words, a bare address: nothing for the model to read.
        scores = None if verdict.final else self.model.score(norm)
        return decide(
            verdict,
            scores,
            emergency_threshold=self.model.emergency_threshold,
            unclear_margin=self.model.unclear_margin,
        )
