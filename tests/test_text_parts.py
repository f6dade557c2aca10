"""Cutting long texts into the parts a channel accepts (bot/text_parts.py)."""

from __future__ import annotations

import pytest

from bot.text_parts import split_text


def test_a_text_that_fits_is_one_part() -> None:
    assert split_text("短句", 10) == ["短句"]
    assert split_text("", 10) == [""]


@pytest.mark.parametrize("limit", [8, 16, 50, 2048])
def test_parts_fit_keep_order_and_lose_nothing_but_the_cuts(limit: int) -> None:
    lines = [f"#{n:04d} 求助 P3 待處理 {'字' * (n % 7)}" for n in range(120)]
    text = "\n".join(lines)
    parts = split_text(text, limit)
    assert all(len(p.encode()) <= limit for p in parts)
    joined = "".join(parts)
    assert joined.replace("\n", "") == text.replace("\n", "")


def test_cuts_fall_between_lines_when_lines_fit() -> None:
    text = "甲" * 5 + "\n" + "乙" * 5 + "\n" + "丙" * 5  # 15 bytes a line
    assert split_text(text, 32) == ["甲" * 5 + "\n" + "乙" * 5, "丙" * 5]


def test_a_line_too_long_alone_is_cut_between_characters() -> None:
    parts = split_text("字" * 10, 10)  # 30 bytes; a character is 3
    assert parts == ["字" * 3, "字" * 3, "字" * 3, "字"]
