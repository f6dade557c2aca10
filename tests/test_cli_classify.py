"""``lianxin classify`` (CONTRACT §1): JSON lines in, one JSON line out per input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bot.cli import main

DEV = Path(__file__).parent.parent / "handlers" / "classify" / "corpus" / "messages-dev.jsonl"


def test_classify_reads_json_lines_and_writes_one_line_each(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        {"text": "有人拿刀在村口砍人,快来"},
        {"text": "請問身份證換領要幾天"},
        {"text": "谢谢王警官"},
        "not json",
        {"words": "no text field"},
        "",
    ]
    stdin = "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin + "\n"))
    assert main(["classify"]) == 1  # some lines were not {"text": …}
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(out) == 6  # one per input line, the blank one included: outputs line up
    knife, id_card, thanks, bad, missing, blank = out
    assert "line 6" in blank["error"]
    assert (knife["label"], knife["emergency"]) == ("report", True)
    assert knife["text"] == "有人拿刀在村口砍人,快来"
    assert (id_card["label"], id_card["emergency"]) == ("consultation", False)
    assert thanks["label"] == "other"
    assert "line 4" in bad["error"] and "line 5" in missing["error"]


def test_classify_eval_prints_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", "--eval", str(DEV)]) == 0
    report = capsys.readouterr().out
    assert "accuracy: 1.000" in report and "confusion matrix" in report
    assert "emergency recall:    1.000" in report


def test_classify_of_good_lines_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "你好"}\n'))
    assert main(["classify"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "other"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read"),
        ('{"text": "好", "label": "other"}\nnot json\n', "line 2: not JSON"),
        ('{"label": "other"}\n', "line 1: expected"),
        ('{"text": "好", "label": "gossip"}\n', "unknown gold label 'gossip'"),
    ],
)
def test_classify_eval_names_a_bad_file_or_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, expected: str
) -> None:
    path = tmp_path / "gold.jsonl"
    if content is not None:
        path.write_text(content, "utf-8")
    assert main(["classify", "--eval", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_lines_that_cannot_be_read_or_written_back_are_error_lines_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = (
        b'{"text": "\\ud800"}\n'  # a lone surrogate: cannot be printed back
        + b"[" * 100_000  # nested too deep for the parser
        + b"\n\xff\xfe not UTF-8\n"
        + b'{"text": 1'
        + b"0" * 5000
        + b"}\n"  # a number too long to convert
        + '{"text": "請問身份證換領要幾天"}\n'.encode()
    )
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))
    assert main(["classify"]) == 1
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [("error" in o) for o in out] == [True, True, True, True, False]
    assert [o["error"][:7] for o in out[:4]] == ["line 1:", "line 2:", "line 3:", "line 4:"]
    assert out[4]["label"] == "consultation"
