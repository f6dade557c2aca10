"""``lianxin demo --script`` plays every scene of the county's accounts and exits 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.demo.script import play


async def test_scripted_scenario_plays_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await play(tmp_path)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "✘" not in out
    for expected in (
        "驗證碼",
        "糾紛調解",
        "走失",
        "安全賬戶",
        "110",
        "反詐",
        "已記錄走訪",
        "覆蓋率",
    ):
        assert expected in out
    # Personal data never shows in clear outside the SMS inbox: the masked phone only.
    assert "139****5678" in out
