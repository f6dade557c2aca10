"""Acting on tickets in the console: the same service functions as the officers' chat
commands (bot/services/ticket_service.py), so the same messages reach residents and officers and
the same rules refuse; each rendered form acts once."""

from __future__ import annotations

from tests.console_support import form_of, hidden, post_form, signed_in, visible_text
from tests.console_world import County, county

_ = county  # the fixture
ANSWER = "已調取監控,請帶身份證到派出所做筆錄"


async def test_an_answer_typed_in_the_console_reaches_the_resident_once(county: County) -> None:
    c = county
    admin = await signed_in(c.h, "admin")
    path = f"/console/tickets/{c.theft.code}"
    page = await admin.get(path)
    action = f"{path}/answer"
    form = {**form_of(page.text, action), "text": ANSWER}
    done = await admin.post(action, data=form)
    assert done.status_code == 303 and done.headers["location"] == f"{path}?done=answered"
    assert "答覆已發出" in (await admin.get(done.headers["location"])).text

    # The same form again (a double click, the back button): nothing more is sent.
    again = await admin.post(action, data=form)
    assert again.headers["location"] == f"{path}?done=duplicate"
    assert "沒有重複執行" in (await admin.get(again.headers["location"])).text

    await c.h.drain()
    answers = [m for m in c.h.to_group("grp-qiaozhen-01") if ANSWER in m["text"]]
    # Exactly as `#CODE text` from the chat words it (texts.yaml ticket_answer), signed by
    # the account, @-mentioning the resident where they asked.
    assert [(m["text"], m["mentions"]) for m in answers] == [
        (f"#{c.theft.code} 民警縣局指揮中心答覆:{ANSWER}", ["wxid_yang"])
    ]
    await c.refresh()
    assert c.theft.status == "answered" and c.theft.answered_at is not None
    page = await admin.get(path)
    timeline = visible_text(page.text.split('id="timeline"')[1])
    assert "答覆" in timeline and "縣局指揮中心" in timeline and ANSWER in timeline


async def test_the_chat_and_the_console_answer_alike(county: County) -> None:
    c = county
    await c.h.say(f"#{c.hexi.code} 已調取監控", sender="wxid_chen", group=None)
    chen = await signed_in(c.h, "chen")
    await post_form(
        chen,
        f"/console/tickets/{c.hexi.code}",
        f"/console/tickets/{c.hexi.code}/answer",
        text="請到派出所做筆錄",
    )
    await c.h.drain()
    texts = [m["text"] for m in c.h.to_group("grp-hexi-01")]
    assert texts == [
        f"#{c.hexi.code} 民警陳警官答覆:已調取監控",
        f"#{c.hexi.code} 民警陳警官答覆:請到派出所做筆錄",
    ]
    assert (await c.h.timeline(c.hexi)).count("answered") == 2


async def test_take_transfer_reclassify_and_close(county: County) -> None:
    c = county
    h = c.h
    path = f"/console/tickets/{c.theft.code}"
    wang = await signed_in(h, "wang")
    took = await post_form(wang, path, f"{path}/take")
    assert took.headers["location"] == f"{path}?done=acknowledged"
    page = await wang.get(path)
    assert f'action="{path}/take"' not in page.text  # already theirs
    await h.drain()
    assert [m["text"] for m in h.to_group("grp-qiaozhen-01")] == [
        f"#{c.theft.code} 民警王警官已接單,正在處理。"
    ]

    zhao = await signed_in(h, "zhao")
    page = await zhao.get(path)
    assert "李警官(橋鎮派出所)" in page.text and "陳警官" not in page.text  # 河西 is not 趙所長's
    moved = await zhao.post(
        f"{path}/transfer", data={**form_of(page.text, f"{path}/transfer"), "officer": "off-li"}
    )
    assert moved.headers["location"] == f"{path}?done=transferred"
    await h.drain()
    assert any(
        t.startswith(f"【轉派給您 #{c.theft.code}】") and "由趙所長轉派" in t
        for t in h.to_user("wxid_li")
    )
    assert f"#{c.theft.code} 已由趙所長轉派給李警官,不再由您負責。" in h.to_user("wxid_wang")
    assert "李警官" in visible_text((await zhao.get(path)).text.split('id="holder"')[1][:200])

    await post_form(zhao, path, f"{path}/reclassify", category="consultation")
    await c.refresh()
    assert (c.theft.category, c.theft.priority) == ("consultation", 3)

    closed = await post_form(zhao, path, f"{path}/close", note="車已找回")
    assert closed.headers["location"] == f"{path}?done=closed"
    await h.drain()
    assert any(
        m["text"].startswith(f"#{c.theft.code} 已結案:車已找回")
        for m in h.to_group("grp-qiaozhen-01")
    )
    await c.refresh()
    assert c.theft.status == "closed" and c.theft.awaiting_satisfaction
    kinds = await h.timeline(c.theft)
    assert kinds[-4:] == ["acknowledged", "transferred", "classified", "closed"]
    page = await zhao.get(path)
    assert (
        f'action="{path}/close"' not in page.text and f'action="{path}/transfer"' not in page.text
    )


async def test_the_chats_rules_refuse_in_the_console_too(county: County) -> None:
    c = county
    h = c.h
    path = f"/console/tickets/{c.theft.code}"
    wang = await signed_in(h, "wang")
    page = await wang.get(path)
    token = hidden(page.text, "csrf_token")

    # 河西's officer is outside 王警官's stations (the chat's 轉派 says the same).
    refused = await wang.post(
        f"{path}/transfer", data={"csrf_token": token, "nonce": "t1", "officer": "off-chen"}
    )
    assert refused.status_code == 400  # what the form named, not the ticket's state
    assert "陳警官不在您的轄區" in refused.text
    unknown = await wang.post(
        f"{path}/transfer", data={"csrf_token": token, "nonce": "t2", "officer": "off-nobody"}
    )
    assert unknown.status_code == 400 and "名冊裡沒有這位民警" in unknown.text
    # Not answered yet: closing it needs the words the residents are to get.
    bare = await wang.post(f"{path}/close", data={"csrf_token": token, "nonce": "c0", "note": ""})
    assert bare.status_code == 400 and "結案請寫上說明" in bare.text

    # An empty answer, or one too long, comes back with the reason and what was typed.
    empty = await wang.post(
        f"{path}/answer", data={"csrf_token": token, "nonce": "a1", "text": "   "}
    )
    assert empty.status_code == 400 and "請輸入答覆內容" in empty.text
    long = "很長的答覆" * 400
    too_long = await wang.post(
        f"{path}/answer", data={"csrf_token": token, "nonce": "a2", "text": long}
    )
    assert too_long.status_code == 400 and "答覆不能超過1500字" in too_long.text
    assert f">{long}</textarea>" in too_long.text
    # A refused form was not used up: corrected, it goes through.
    fixed = await wang.post(
        f"{path}/answer", data={"csrf_token": token, "nonce": "a2", "text": "好的"}
    )
    assert fixed.status_code == 303

    bad_label = await wang.post(
        f"{path}/reclassify", data={"csrf_token": token, "nonce": "r1", "category": "bogus"}
    )
    assert bad_label.status_code == 400 and "沒有這個類別" in bad_label.text

    await post_form(wang, path, f"{path}/close", note="")
    again = await wang.post(
        f"{path}/close", data={"csrf_token": token, "nonce": "c2", "note": "再結一次"}
    )
    assert again.status_code == 409
    assert f"#{c.theft.code} 已結案,說明沒有發給居民" in visible_text(again.text)

    # An admin without a directory officer cannot take a ticket for themselves.
    admin = await signed_in(h, "admin")
    knife = f"/console/tickets/{c.knife.code}"
    page = await admin.get(knife)
    assert f'action="{knife}/take"' not in page.text
    refused = await admin.post(
        f"{knife}/take", data={"csrf_token": hidden(page.text, "csrf_token"), "nonce": "k1"}
    )
    assert refused.status_code == 409 and "沒有關聯民警" in refused.text
    await c.refresh()
    assert c.knife.acknowledged_at is None
