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


CORPUS = DEV.parent


def _small_corpus(tmp_path: Path) -> Path:
    """The dev sample, the held-out set and rounds 2–3: enough to train on in about a second."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in ("messages-dev", "heldout", "unseen-round2", "unseen-round3"):
        (folder / f"{name}.jsonl").write_bytes((CORPUS / f"{name}.jsonl").read_bytes())
    return folder


def test_train_writes_the_same_weights_file_every_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("sklearn")
    corpus = _small_corpus(tmp_path)
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    assert main(["classify", "train", "--corpus", str(corpus), "--out", str(first)]) == 0
    assert "785 messages" in capsys.readouterr().out
    assert main(["classify", "train", "--corpus", str(corpus), "--out", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    check = ["classify", "train", "--corpus", str(corpus), "--out", str(first), "--check"]
    assert main(check) == 0
    assert "current" in capsys.readouterr().out
    with (corpus / "unseen-round3.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({"text": "楼下着火了", "label": "help", "emergency": True}) + "\n")
    assert main(check) == 1
    assert "OUT OF DATE" in capsys.readouterr().out


def test_train_names_a_bad_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["classify", "train", "--corpus", str(empty), "--out", str(tmp_path / "m")]) == 2
    assert "no labelled" in capsys.readouterr().err
    (empty / "bad.jsonl").write_text('{"text": "好", "label": "gossip"}\n', "utf-8")
    assert main(["classify", "train", "--corpus", str(empty), "--out", str(tmp_path / "m")]) == 2
    assert "gossip" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_forward_trains_on_earlier_rounds_and_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("sklearn")
    corpus = _small_corpus(tmp_path)
    saved = tmp_path / "flags.jsonl"
    args = ["classify", "forward", "--corpus", str(corpus), "--from", "3", "--save", str(saved)]
    assert main(args) == 0
    table = capsys.readouterr().out
    # Round 3 alone, trained on the dev sample, the held-out set and round 2 (683 messages).
    assert "| round3 | 683 | 102 |" in table and "**all 1**" in table
    rows = [json.loads(line) for line in saved.read_text("utf-8").splitlines()]
    assert len(rows) == 102 and {r["round"] for r in rows} == {"unseen-round3"}
    assert main([*args, "--recall", "1.5"]) == 2


def test_a_bom_is_no_error_and_each_bad_line_says_what_it_is(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A file saved by Notepad or exported by Excel as UTF-8 starts with a BOM: its first line
    # was refused; and every bad line said the same "expected {"text": …}".
    raw = '\ufeff{"text": "你好"}\n{"text": 5}\n["x"]\n{"txt": "a"}\nnot json\n\n'
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw.encode()), encoding="utf-8"))
    assert main(["classify"]) == 1
    first, *errors = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert first["label"] == "other"
    assert [e["error"].split(" (expected")[0] for e in errors] == [
        'line 2: "text" is not a string',
        "line 3: not an object",
        'line 4: no "text"',
        "line 5: not JSON",
        "line 6: an empty line",
    ]
