"""How long the README's "weekly anti-fraud video for one town" takes in the console, walked at a
person's pace against a real ``lianxin demo``.

What it measures
    ``lianxin demo`` is started as a newcomer starts it (its own process, the printed admin
    password read from its output). Debian's Chromium (Playwright) then follows the README's
    steps — sign in, 公告, ＋ 新增公告, title, 類別, text, a video file, 按派出所 橋鎮派出所,
    每週 週一 09:00, 預覽, 確認保存 — pausing before each as a person would:

    * ``--think`` s (3) to read the next step and find its control;
    * 1.2 s to point and click;
    * ``--per-char`` s (1.2) per Chinese character typed with a pinyin input method (0.3 models
      pasting from a document), 0.3–0.4 s per Latin character (the username and password);
    * 12 s to choose the video in the file dialog, 15 s to read the preview.

    It prints each pause and the total wall time (pauses plus the server's real answers). These
    pauses are a model (in the spirit of the keystroke-level model), not a person: nobody was
    timed. The browser test (tests/test_console_bulletins_browser.py) does the same walk
    without pauses; its duration is a floor.

How to run
    .venv/bin/python bench/console_walk.py                  # typed text
    .venv/bin/python bench/console_walk.py --per-char 0.3   # pasted text

    Needs the ``playwright`` package and /usr/bin/chromium. Exit status 0 when the bulletin was
    saved within 120 s, 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

CLICK = 1.2
FILE_DIALOG = 12.0
READ_PREVIEW = 15.0
TITLE = "每週防詐騙短片"
TEXT = "不要向陌生賬戶轉賬,接到自稱公檢法的電話請先撥打110核實。"
MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 300_000


class Walk:
    """Pauses as a person would, recording each."""

    def __init__(self, page: Page, think: float, per_char: float) -> None:
        self.page, self.think, self.per_char = page, think, per_char
        self.steps: list[tuple[str, float]] = []

    def pause(self, seconds: float, what: str) -> None:
        time.sleep(seconds)
        self.steps.append((what, seconds))

    def type(self, selector: str, text: str, what: str, per_char: float | None = None) -> None:
        self.page.click(selector)
        self.pause(CLICK + len(text) * (self.per_char if per_char is None else per_char), what)
        self.page.fill(selector, text)


def start_demo(port: int, folder: Path) -> tuple[subprocess.Popen[str], str]:
    """``lianxin demo`` in its own process; returns it and the admin's printed password."""
    lianxin = shutil.which("lianxin") or str(Path(sys.executable).with_name("lianxin"))
    proc = subprocess.Popen(
        [lianxin, "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=folder,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    password = None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if found := re.search(r"^\s*admin / (\S+)", line):
            password = found.group(1)
        if "Ctrl+C" in line or not line:
            break
    if password is None:
        proc.terminate()
        raise SystemExit("lianxin demo did not print the admin's password")
    return proc, password


def walk(base: str, password: str, video: Path, think: float, per_char: float) -> Walk:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        w = Walk(page, think, per_char)
        page.goto(f"{base}/console/")
        w.pause(think, "see the sign-in page")
        w.type("input[name=username]", "admin", "type admin", 0.3)
        w.type("input[name=password]", password, "type the printed password", 0.4)
        w.pause(CLICK, "sign in")
        page.click("#login-form button[type=submit]")
        w.pause(think, "find 公告")
        page.click("nav.nav >> text=公告")
        w.pause(think, "find ＋ 新增公告")
        page.click("#new-bulletin")
        w.pause(think, "look over the form")
        w.type("input[name=title]", TITLE, f"title ({len(TITLE)} characters)")
        w.pause(think + CLICK, "類別: 防詐騙")
        page.select_option("select[name=category]", label="防詐騙")
        w.type("textarea[name=text]", TEXT, f"text ({len(TEXT)} characters)")
        w.pause(FILE_DIALOG, "choose the video")
        page.set_input_files("input[name=media_file]", str(video))
        w.pause(think + CLICK, "按派出所 is chosen; tick 橋鎮派出所")
        page.locator(".when-stations label", has_text="橋鎮派出所").locator("input").check()
        w.pause(think + CLICK, "每週 is chosen; tick 週一")
        page.locator("fieldset.days label", has_text="週一").locator("input").check()
        w.pause(think + CLICK, "09:00 is there; press 預覽")
        page.click("#preview-button")
        expect(page.locator("#preview-runs time")).to_have_count(5)
        w.pause(READ_PREVIEW, "read the preview")
        w.pause(CLICK, "確認保存")
        page.click("#save-button")
        expect(page.locator("#done")).to_be_visible()
        browser.close()
    return w


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--think", type=float, default=3.0)
    parser.add_argument("--per-char", type=float, default=1.2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="console-walk-") as tmp:
        folder = Path(tmp)
        video = folder / "防詐騙短片.mp4"
        video.write_bytes(MP4)
        proc, password = start_demo(args.port, folder)
        try:
            started = time.monotonic()
            w = walk(f"http://127.0.0.1:{args.port}", password, video, args.think, args.per_char)
            total = time.monotonic() - started
        finally:
            proc.terminate()
            proc.wait(10)
    for what, seconds in w.steps:
        print(f"{seconds:6.1f} s  {what}")
    paused = sum(s for _, s in w.steps)
    pages = total - paused
    print(f"total {total:.1f} s: {paused:.1f} s of modelled pauses, {pages:.1f} s of pages")
    return 0 if total < 120 else 1


if __name__ == "__main__":
    sys.exit(main())
