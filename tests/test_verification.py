"""Real-name verification, membership events and 指派 through the real surfaces.

Signed bridge events and WeChat callbacks go into the ASGI app; SMS and bridge sends come out
at the fake server; the manual clock ages codes. The handler chain is the planned order's
relevant part (membership → verification → greeting), plus, where a test needs it, a stand-in
for intake that calls the helpers intake will call.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from bot.app import create_app, make_worker
from bot.channels.bridge import signed_headers
from bot.channels.sms import LogSmsSender, make_sms_sender
from bot.clock import ManualClock
from bot.services.directory import load_directory_file
from handlers.context import Handler, HandlerContext
from handlers.greeting import private_greeting
from handlers.membership import membership_events
from handlers.verification import verification_commands
from handlers.verification_support import is_verified, maybe_remind
from models.directory import Group
from models.journal import InboundEvent
from models.outbox import OutboxMessage
from models.people import Binding, GroupMember, Member, VerificationCode
from tests import harness as test_harness
from tests.fakes import FakeWorld
from tests.harness import BRIDGE_SECRET, Harness, SettledTransport

DIRECTORY = Path(__file__).parent / "data" / "directory.yaml"
CHAIN: list[Handler] = [membership_events, verification_commands, private_greeting]
PHONE = "13812345678"
GROUP = "grp-qiaozhen-01"


# --- building blocks (also used by test_households_keys) ----------------------------------------


async def build_harness(
    db_url: str,
    world: FakeWorld,
    *,
    handlers: Sequence[Handler] = CHAIN,
    clock: ManualClock | None = None,
    **overrides: Any,
) -> Harness:
    """A harness whose app runs ``handlers``, with the directory loaded and SMS wired."""
    world.state.bridge_secret = BRIDGE_SECRET
    clock = clock or ManualClock(datetime.now().astimezone())
    settings = test_harness.test_settings(db_url, world, **overrides)
    runtime = test_harness.make_runtime(settings, clock=clock)
    # Until bot/runtime.py registers it, the SMS sender is added here.
    runtime.senders.setdefault("sms", make_sms_sender(settings, runtime.http, clock))
    app = create_app(runtime, handlers=list(handlers), background=False)
    client = httpx.AsyncClient(transport=SettledTransport(app=app), base_url="http://lianxin")
    harness = Harness(runtime, client, world, clock, make_worker(runtime))
    async with runtime.sessions.begin() as session:
        await load_directory_file(session, DIRECTORY)
    return harness


def sms_to(world: FakeWorld, phone: str = PHONE) -> list[str]:
    """Texts of every SMS the gateway received for ``phone``."""
    return [r.json()["text"] for r in world.state.by_path("/sms") if r.json()["phone"] == phone]


def code_in(text: str) -> str:
    match = re.search(r"(?<!\d)(\d{6})(?!\d)", text)
    assert match, text
    return match.group(1)


def private_to(world: FakeWorld, user: str = "wxid_yang") -> list[str]:
    return [
        m["text"] for m in world.state.delivered() if m["group_id"] is None and m["user_id"] == user
    ]


def in_group(world: FakeWorld, group: str = GROUP) -> list[str]:
    return [m["text"] for m in world.state.delivered() if m["group_id"] == group]


async def dm(h: Harness, text: str, sender: str = "wxid_yang") -> list[str]:
    """Say ``text`` privately over the bridge; the bot's private answers to it."""
    before = len(private_to(h.world, sender))
    await h.say(text, group=None, sender=sender)
    await h.drain()
    return private_to(h.world, sender)[before:]


async def bind(
    h: Harness, name: str = "张三", phone: str = PHONE, sender: str = "wxid_yang"
) -> None:
    await dm(h, f"实名 {name} {phone}", sender)
    answers = await dm(h, code_in(sms_to(h.world, phone)[-1]), sender)
    assert answers and "成功" in answers[-1], answers


async def rows(h: Harness, model: type, *where: Any) -> list[Any]:
    async with h.runtime.sessions() as s:
        return list((await s.scalars(select(model).where(*where))).all())


async def member_id(h: Harness, sender: str = "wxid_yang", channel: str = "bridge") -> int:
    found = await rows(h, Member, Member.sender_id == sender, Member.channel == channel)
    return found[0].id


@pytest.fixture
async def vh(db_url: str, world: FakeWorld) -> AsyncIterator[Harness]:
    h = await build_harness(db_url, world)
    yield h
    await h.close()


# --- binding ----------------------------------------------------------------------------------


async def test_good_binding_sends_code_by_sms_and_binds_encrypted(vh: Harness) -> None:
    answers = await dm(vh, f"实名 张三 {PHONE}")
    assert len(answers) == 1 and "138****5678" in answers[0] and PHONE not in answers[0]
    texts = sms_to(vh.world)
    assert len(texts) == 1
    code = code_in(texts[0])
    (pending,) = await rows(vh, VerificationCode)
    assert pending.status == "open" and code not in pending.code_hash
    assert await rows(vh, Binding) == []

    answers = await dm(vh, code)
    assert "实名认证成功" in answers[0] and "张*" in answers[0] and "138****5678" in answers[0]
    (binding,) = await rows(vh, Binding)
    cipher = vh.runtime.cipher
    assert cipher.decrypt(binding.name_enc) == "张三"
    assert cipher.decrypt(binding.phone_enc) == PHONE
    assert binding.phone_hash == cipher.lookup_hash(PHONE)
    assert binding.member_id == await member_id(vh)
    (used,) = await rows(vh, VerificationCode)
    assert used.status == "used" and cipher.decrypt(used.phone_enc) == ""


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("实名张三13912345678", "13912345678"),
        ("實名：張三 138-1234-5670", "13812345670"),
        ("实名 张三 +86 137 1234 5678", "13712345678"),
        ("實名\u3000張三\u3000１５０１２３４５６７８", "15012345678"),
        ("实名认证 阿卜杜・热合曼 18612345678", "18612345678"),
        ("实名 John Smith 0086 13612345678", "13612345678"),
        ("我要实名 赵小红 13912340002", "13912340002"),  # said as people say it
        ("請幫我實名認證 陳大文 13812340003", "13812340003"),
        # A newcomer's forms, refused as a bad name before: the number first, in brackets.
        ("实名 13812340018 张三", "13812340018"),
        ("实名 陈大文 (+86)13812340019", "13812340019"),
    ],
)
async def test_forms_of_the_command_are_understood(vh: Harness, text: str, phone: str) -> None:
    answers = await dm(vh, text)
    assert len(sms_to(vh.world, phone)) == 1, answers
    await dm(vh, code_in(sms_to(vh.world, phone)[0]))
    (binding,) = await rows(vh, Binding)
    assert vh.runtime.cipher.decrypt(binding.phone_enc) == phone


@pytest.mark.parametrize("name", ["张3", "张", "王" * 21, "·张三", "张 三", "李四!"])
async def test_bad_name_is_refused_and_nothing_is_sent(vh: Harness, name: str) -> None:
    answers = await dm(vh, f"实名 {name} {PHONE}")
    assert len(answers) == 1 and "姓名" in answers[0] and "数字" in answers[0]
    assert vh.world.state.by_path("/sms") == []
    assert await rows(vh, VerificationCode) == []


@pytest.mark.parametrize(
    "phone",
    [
        "12812345678",
        "1381234567",
        "138123456789",
        "+1 415 555 1234",
        "0571-8888888",
        "010-12345678",
    ],
)
async def test_bad_phone_is_refused_and_nothing_is_sent(vh: Harness, phone: str) -> None:
    answers = await dm(vh, f"实名 张三 {phone}")
    assert len(answers) == 1 and "手机号不正确" in answers[0]
    assert vh.world.state.by_path("/sms") == []
    assert await rows(vh, VerificationCode) == []


async def test_incomplete_command_explains_itself(vh: Harness) -> None:
    assert "请在姓名后面加上您的手机号" in (await dm(vh, "实名 张三"))[0]
    assert "实名 姓名 手机号" in (await dm(vh, "实名"))[0]
    assert vh.world.state.by_path("/sms") == []


async def test_wrong_code_says_tries_left_and_binds_nothing(vh: Harness) -> None:
    await dm(vh, f"实名 张三 {PHONE}")
    code = code_in(sms_to(vh.world)[0])
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    answers = await dm(vh, wrong)
    assert "验证码不正确" in answers[0] and "4次" in answers[0]
    assert "3次" in (await dm(vh, wrong))[0]
    assert await rows(vh, Binding) == []
    assert "成功" in (await dm(vh, code))[0]
    assert len(await rows(vh, Binding)) == 1


@pytest.mark.parametrize("typed", ["{a} {b}", "验证码:{a}{b}", "驗證碼 {a}-{b}", "code {a}{b}"])
async def test_a_code_typed_with_a_space_or_a_word_is_the_code(vh: Harness, typed: str) -> None:
    # Found by a newcomer: "915 614" got the greeting, and the live code stayed in the journal.
    await dm(vh, f"实名 张三 {PHONE}")
    code = code_in(sms_to(vh.world)[0])
    answers = await dm(vh, typed.format(a=code[:3], b=code[3:]))
    assert "成功" in answers[0]
    async with vh.runtime.sessions() as s:
        texts = [
            vh.runtime.cipher.decrypt_json(r.payload_enc).get("text")
            for r in (await s.scalars(select(InboundEvent))).all()
        ]
    assert not [t for t in texts if t and code[:3] in t and code[3:] in t]  # masked


async def test_expired_code_says_so_and_binds_nothing(vh: Harness) -> None:
    await dm(vh, f"实名 张三 {PHONE}")
    code = code_in(sms_to(vh.world)[0])
    vh.clock.advance(vh.runtime.settings.verification.code_ttl_s + 1)
    assert "已过期" in (await dm(vh, code))[0]
    assert await rows(vh, Binding) == []
    # The code is closed: the same digits are told so, with the way to a new code.
    assert "这个验证码已失效" in (await dm(vh, code))[0]
    assert await rows(vh, Binding) == []
    # An hour after the request, digits are an ordinary message (the greeting answers).
    vh.clock.advance(3601)
    assert "连心警民服务" in (await dm(vh, code))[0]


async def test_too_many_tries_kill_the_code(vh: Harness) -> None:
    await dm(vh, f"实名 张三 {PHONE}")
    code = code_in(sms_to(vh.world)[0])
    wrong = f"{(int(code) + 7) % 10**6:06d}"
    for _ in range(vh.runtime.settings.verification.max_tries - 1):
        assert "验证码不正确" in (await dm(vh, wrong))[0]
    assert "错误次数太多" in (await dm(vh, wrong))[0]
    # Found by a newcomer: the right digits then got the greeting (in the other script).
    assert "这个验证码已失效" in (await dm(vh, code))[0]
    assert await rows(vh, Binding) == []
    (dead,) = await rows(vh, VerificationCode)
    assert dead.status == "dead"


async def test_resend_too_soon_is_refused_and_a_new_code_kills_the_old(vh: Harness) -> None:
    await dm(vh, f"实名 张三 {PHONE}")
    first = code_in(sms_to(vh.world)[0])
    vh.clock.advance(30)
    answers = await dm(vh, f"实名 张三 {PHONE}")
    assert "30秒后" in answers[0]
    assert len(sms_to(vh.world)) == 1
    vh.clock.advance(31)
    await dm(vh, f"实名 张三 {PHONE}")
    texts = sms_to(vh.world)
    assert len(texts) == 2
    second = code_in(texts[1])
    statuses = sorted(c.status for c in await rows(vh, VerificationCode))
    assert statuses == ["dead", "open"]
    if first != second:
        assert "验证码不正确" in (await dm(vh, first))[0]
    assert "成功" in (await dm(vh, second))[0]


async def test_too_many_requests_per_sender_and_per_phone(vh: Harness) -> None:
    limit = vh.runtime.settings.verification.max_requests_per_hour
    for i in range(limit):
        await dm(vh, f"实名 张三 1381234{i:04d}")
        vh.clock.advance(61)
    answers = await dm(vh, "实名 张三 13812349999")
    assert "太频繁" in answers[0] and "分钟后再试" in answers[0]
    assert sms_to(vh.world, "13812349999") == []
    # The same number from other senders: the per-phone limit.
    for i in range(limit):
        await dm(vh, f"实名 李四 {PHONE}", sender=f"wxid_other{i}")
        vh.clock.advance(61)
    assert len(sms_to(vh.world)) == limit
    assert "太频繁" in (await dm(vh, f"实名 李四 {PHONE}", sender="wxid_late"))[0]
    assert len(sms_to(vh.world)) == limit
    # An hour later the sender may ask again.
    vh.clock.advance(3600)
    await dm(vh, "实名 张三 13812349999")
    assert len(sms_to(vh.world, "13812349999")) == 1


async def test_rebinding_replaces_the_binding_after_the_new_code(vh: Harness) -> None:
    await bind(vh)
    vh.clock.advance(61)
    await dm(vh, "实名 张三 13987654321")
    (binding,) = await rows(vh, Binding)
    assert vh.runtime.cipher.decrypt(binding.phone_enc) == PHONE  # not before the code
    await dm(vh, code_in(sms_to(vh.world, "13987654321")[0]))
    (binding,) = await rows(vh, Binding)
    assert vh.runtime.cipher.decrypt(binding.phone_enc) == "13987654321"


# --- groups and stray digits ------------------------------------------------------------------


async def test_public_binding_in_a_group_is_answered_once_without_the_number(vh: Harness) -> None:
    await vh.say(f"实名 张三 {PHONE}", group=GROUP)
    await vh.say(f"实名 张三 {PHONE}", group=GROUP)
    await vh.drain()
    replies = in_group(vh.world)
    assert len(replies) == 1
    assert "私聊" in replies[0]
    # The number stays in the group's history unless they recall it (WeChat allows 2 minutes).
    assert "撤回" in replies[0]
    for secret in (PHONE, "5678", "张三", "張三"):
        assert secret not in replies[0]
    assert vh.world.state.by_path("/sms") == []
    assert await rows(vh, VerificationCode) == []
    # The next day the hint may come again.
    vh.clock.advance(86400)
    await vh.say(f"实名 张三 {PHONE}", group=GROUP)
    await vh.drain()
    assert len(in_group(vh.world)) == 2


async def test_six_digits_in_a_group_are_never_a_code(vh: Harness) -> None:
    await dm(vh, f"实名 张三 {PHONE}")
    code = code_in(sms_to(vh.world)[0])
    await vh.say(code, group=GROUP)
    await vh.drain()
    assert await rows(vh, Binding) == []
    (pending,) = await rows(vh, VerificationCode)
    assert pending.status == "open" and pending.attempts == 0
    assert in_group(vh.world) == []


async def test_six_digits_without_an_open_code_fall_through(vh: Harness) -> None:
    answers = await dm(vh, "123456")
    assert len(answers) == 1 and "连心警民服务" in answers[0]  # the greeting, not a code answer


# --- 我的信息 and 註銷實名 --------------------------------------------------------------------------


async def test_my_info_is_masked_and_lists_groups(vh: Harness) -> None:
    assert "还没有实名认证" in (await dm(vh, "我的信息"))[0]
    await vh.say("大家好", group=GROUP)  # speaking in a group makes one a member
    await bind(vh, name="楊某某")
    answer = (await dm(vh, "我的資訊"))[0]
    assert "楊**" in answer and "138****5678" in answer and "橋鎮村警民群" in answer
    assert PHONE not in answer and "楊某某" not in answer
    assert "您的實名資訊" in answer  # the resident wrote Traditional


async def test_unbinding_deletes_the_personal_data(vh: Harness) -> None:
    await bind(vh)
    vh.clock.advance(61)
    await dm(vh, "实名 张三 13987654321")  # an open code too
    answer = (await dm(vh, "注销实名"))[0]
    assert "已注销实名" in answer
    assert await rows(vh, Binding) == []
    cipher = vh.runtime.cipher
    for code in await rows(vh, VerificationCode):
        assert code.status != "open"
        assert cipher.decrypt(code.name_enc) == "" and cipher.decrypt(code.phone_enc) == ""
    assert "还没有实名认证" in (await dm(vh, "我的信息"))[0]
    assert "沒有實名綁定" in (await dm(vh, "註銷實名"))[0]


async def test_no_name_or_number_in_clear_in_the_database_or_logs(
    vh: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    name = "欧阳娜娜"
    await bind(vh, name=name)
    await dm(vh, "我的信息")
    for needle in (PHONE, name):
        assert needle not in caplog.text
    url = vh.runtime.settings.database.url
    if not url.startswith("sqlite"):
        return  # the file check needs a file
    await vh.runtime.engine.dispose()
    path = Path(url.split(":///", 1)[1])
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert raw, "database file not found"
    for needle in (PHONE, name, "欧阳"):
        assert needle.encode() not in raw


async def test_unbinding_during_a_verification_says_the_code_is_void(vh: Harness) -> None:
    await dm(vh, f"实名 张三 {PHONE}")
    code = code_in(sms_to(vh.world, PHONE)[-1])
    [answer] = await dm(vh, "注销实名")
    assert "验证码已作废" in answer and "无需注销" not in answer
    answers = await dm(vh, code)
    assert not any("成功" in a for a in answers)
    assert await rows(vh, Binding) == []


async def test_a_day_caps_the_codes_per_number_and_per_sender(vh: Harness) -> None:
    # Five an hour, hour after hour, was 120 codes a day to one phone (and 600 guesses a day at
    # it for whoever asked): the day's cap stops it at ten.
    per_day = vh.runtime.settings.verification.max_requests_per_day
    for i in range(per_day):
        await dm(vh, f"实名 李四 {PHONE}", sender=f"wxid_stranger{i}")
        vh.clock.advance(3600 / 4)
    assert len(sms_to(vh.world)) == per_day
    answers = await dm(vh, f"实名 李四 {PHONE}", sender="wxid_late")
    assert "24小时内申请验证码的次数已达上限" in answers[0] and "小时后再试" in answers[0]
    assert len(sms_to(vh.world)) == per_day
    # The same cap for one sender asking for many numbers.
    for i in range(per_day):
        await dm(vh, f"实名 张三 1391234{i:04d}")
        vh.clock.advance(3600 / 4)
    assert "次數已達上限" in (await dm(vh, "實名 張三 13912349999"))[0]
    assert sms_to(vh.world, "13912349999") == []
    # A day after the first of them, the number may be asked for again.
    vh.clock.advance(24 * 3600)
    await dm(vh, f"实名 李四 {PHONE}", sender="wxid_late")
    assert len(sms_to(vh.world)) == per_day + 1


async def test_unbinding_during_a_verification_does_not_reset_the_sms_limits(vh: Harness) -> None:
    # 實名 someone else's number, 註銷 at once, again and again: every round used to send
    # another code, the 60-second pause and the hourly limit never seeing the cancelled ones.
    await dm(vh, f"实名 张三 {PHONE}")
    await dm(vh, "注销实名")
    answers = await dm(vh, f"实名 张三 {PHONE}")
    assert "秒后" in answers[0]
    assert len(sms_to(vh.world)) == 1
    # Another account asking for the same number waits as well.
    assert "秒后" in (await dm(vh, f"实名 张三 {PHONE}", sender="wxid_other"))[0]
    limit = vh.runtime.settings.verification.max_requests_per_hour
    for _ in range(limit - 1):
        vh.clock.advance(61)
        await dm(vh, f"实名 张三 {PHONE}")
        await dm(vh, "注销实名")
    assert len(sms_to(vh.world)) == limit
    vh.clock.advance(61)
    assert "太频繁" in (await dm(vh, f"实名 张三 {PHONE}"))[0]
    assert len(sms_to(vh.world)) == limit
    # The cancelled codes keep no name or number, only the hash the limits count.
    readable = [vh.runtime.cipher.decrypt(c.phone_enc) for c in await rows(vh, VerificationCode)]
    assert readable and set(readable) == {""}


async def test_unbinding_leaves_a_later_real_name_command_readable(vh: Harness) -> None:
    # 註銷 and a new 實名 sent in a row, both journaled before either is processed (a busy
    # moment): the 註銷 used to mask every 實名 of the sender in the journal, the later one
    # too, which then read "實名 王** 139****0001" and was refused as a name with digits.
    await bind(vh)
    vh.clock.advance(61)
    app = vh.client._transport.app  # type: ignore[attr-defined]
    plain = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lianxin")
    async with plain:
        for text in ("註銷實名", "實名 王小明 13900000001"):
            raw = json.dumps(vh.bridge_body(text, group=None), ensure_ascii=False).encode()
            headers = signed_headers(BRIDGE_SECRET, raw, vh.clock.now())
            response = await plain.post("/bridge/events", content=raw, headers=headers)
            assert response.status_code == 200, response.text
    await vh.pipeline.drain()
    await vh.drain()
    answers = private_to(vh.world)[-2:]
    assert "139****0001" in answers[-1] and "姓名" not in answers[-1], answers
    assert len(sms_to(vh.world, "13900000001")) == 1


async def _readable_texts(h: Harness) -> str:
    """Every journal and outbox payload, decrypted with the running key: what an operator with
    the key (or a thief with both) could read."""
    cipher = h.runtime.cipher
    journal = await rows(h, InboundEvent)
    outbox = await rows(h, OutboxMessage)
    payloads = [cipher.decrypt_json(r.payload_enc) for r in [*journal, *outbox]]
    return json.dumps(payloads, ensure_ascii=False)


async def test_real_name_commands_are_kept_masked_and_unbinding_leaves_no_trace(
    vh: Harness,
) -> None:
    name = "欧阳娜娜"
    await vh.say(f"實名 {name} {PHONE}", group=GROUP)  # in the group by mistake
    await vh.drain()
    await bind(vh, name=name)
    readable = await _readable_texts(vh)
    # The binding holds the name and number; the journal holds the commands masked, and the
    # code's text message keeps the number only while it is being sent.
    assert name not in readable and PHONE not in readable
    assert "實名 欧*** 138****5678" in readable
    [sms] = [r for r in await rows(vh, OutboxMessage) if r.channel == "sms"]
    assert sms.status == "sent"
    # Only a hash of the code is kept: once sent, its text message keeps no code either.
    [code_sms] = sms_to(vh.world)
    assert code_in(code_sms) not in readable and "******" in readable

    answers = await dm(vh, "注销实名")
    assert "删除" in answers[-1]
    assert await rows(vh, Binding) == []
    readable = await _readable_texts(vh)
    assert name not in readable and PHONE not in readable and "欧阳" not in readable
    # Commands masked on arrival stay as they were (masking them again garbled the number).
    assert "實名 欧*** 138****5678" in readable


async def test_unbinding_masks_commands_journaled_in_clear_and_cancels_unsent_codes(
    vh: Harness,
) -> None:
    # Journal rows from before commands were masked on arrival, and a code still unsent.
    await vh.say(f"实名 李四 {PHONE}", group=None)
    cipher = vh.runtime.cipher
    async with vh.runtime.sessions.begin() as s:
        for event in (await s.scalars(select(InboundEvent))).all():
            payload = cipher.decrypt_json(event.payload_enc)
            event.payload_enc = cipher.encrypt_json({**payload, "text": f"实名 李四 {PHONE}"})
    assert PHONE in await _readable_texts(vh)
    [sms] = [r for r in await rows(vh, OutboxMessage) if r.channel == "sms"]
    assert sms.status == "pending"  # not sent yet

    await dm(vh, "註銷實名")
    readable = await _readable_texts(vh)
    assert PHONE not in readable and "李四" not in readable
    [sms] = [r for r in await rows(vh, OutboxMessage) if r.channel == "sms"]
    assert sms.status == "failed" and "deleted" in (sms.last_error or "")
    assert sms_to(vh.world, PHONE) == []  # the code never went out


# --- membership -------------------------------------------------------------------------------


async def _event(h: Harness, kind: str, sender: str, group: str = GROUP) -> None:
    response = await h.post_bridge(h.bridge_body(type=kind, sender=sender, group=group))
    assert response.status_code == 200, response.text
    await h.drain()


async def test_joining_resident_gets_one_private_welcome(vh: Harness) -> None:
    await _event(vh, "member_joined", "wxid_new")
    welcome = private_to(vh.world, "wxid_new")
    assert len(welcome) == 1 and "實名 姓名 手機號" in welcome[0]  # Traditional group name
    assert in_group(vh.world) == []
    mid = await member_id(vh, "wxid_new")
    (row,) = await rows(vh, GroupMember, GroupMember.member_id == mid)
    assert row.group_id == GROUP and row.left_at is None

    await _event(vh, "member_left", "wxid_new")
    (row,) = await rows(vh, GroupMember, GroupMember.member_id == mid)
    assert row.left_at is not None
    await _event(vh, "member_joined", "wxid_new")
    (row,) = await rows(vh, GroupMember, GroupMember.member_id == mid)
    assert row.left_at is None
    assert len(private_to(vh.world, "wxid_new")) == 1
    assert in_group(vh.world) == []


async def test_officer_joining_is_announced_and_takes_an_officerless_group(vh: Harness) -> None:
    async with vh.runtime.sessions.begin() as s:
        await s.execute(update(Group).where(Group.id == "grp-qiaozhen-02").values(officer_id=None))
    await _event(vh, "member_joined", "wxid_wang", group="grp-qiaozhen-02")
    (announcement,) = in_group(vh.world, "grp-qiaozhen-02")
    assert "本群民警 王警官 已入群,有事請@我" in announcement
    assert private_to(vh.world, "wxid_wang") == []
    (group,) = await rows(vh, Group, Group.id == "grp-qiaozhen-02")
    assert group.officer_id == "off-wang"
    # A group that has its officer keeps it; the newcomer is still announced.
    await _event(vh, "member_joined", "wxid_li", group=GROUP)
    (newcomer,) = in_group(vh.world, GROUP)
    assert "李警官" in newcomer and "本群民警" not in newcomer  # not this group's officer
    (group,) = await rows(vh, Group, Group.id == GROUP)
    assert group.officer_id == "off-wang"


async def test_a_group_name_both_scripts_write_alike_gets_traditional(vh: Harness) -> None:
    # "群" is written alike in both scripts (plain s2t would make it 羣 and call the name
    # Simplified): the welcome is Traditional, as for any name that does not tell.
    async with vh.runtime.sessions.begin() as s:
        await s.execute(update(Group).where(Group.id == GROUP).values(name="河西村警民群"))
    await _event(vh, "member_joined", "wxid_new")
    (welcome,) = private_to(vh.world, "wxid_new")
    assert "實名 姓名 手機號" in welcome


async def test_the_group_officer_leaving_frees_the_group_and_tells_the_leader(
    vh: Harness,
) -> None:
    await _event(vh, "member_left", "wxid_li", group=GROUP)  # a colleague: nothing changes
    assert private_to(vh.world, "wxid_zhao") == []
    (group,) = await rows(vh, Group, Group.id == GROUP)
    assert group.officer_id == "off-wang"

    await _event(vh, "member_left", "wxid_wang", group=GROUP)
    (group,) = await rows(vh, Group, Group.id == GROUP)
    assert group.officer_id is None
    (notice,) = private_to(vh.world, "wxid_zhao")
    assert "王警官 已退出" in notice and f"指派 {GROUP} 民警編號" in notice
    assert in_group(vh.world) == []  # residents are not told

    # Leaving twice tells nobody again; rejoining takes the officer-less group back.
    await _event(vh, "member_left", "wxid_wang", group=GROUP)
    assert len(private_to(vh.world, "wxid_zhao")) == 1
    await _event(vh, "member_joined", "wxid_wang", group=GROUP)
    (group,) = await rows(vh, Group, Group.id == GROUP)
    assert group.officer_id == "off-wang"


async def test_assign_by_leader_in_group_and_privately(vh: Harness) -> None:
    await vh.say("指派 off-li", group=GROUP, sender="wxid_zhao")
    await vh.drain()
    assert "已指派 李警官" in in_group(vh.world)[-1]
    assert (await rows(vh, Group, Group.id == GROUP))[0].officer_id == "off-li"
    answers = await dm(vh, "指派 grp-qiaozhen-02 off-wang", sender="wxid_zhao")
    assert "已指派 王警官" in answers[0]
    assert (await rows(vh, Group, Group.id == "grp-qiaozhen-02"))[0].officer_id == "off-wang"


async def test_assign_refusals(vh: Harness) -> None:
    for sender in ("wxid_wang", "wxid_yang"):  # an officer who is not a leader; a resident
        await vh.say("指派 off-li", group=GROUP, sender=sender)
        await vh.drain()
        assert "只有所領導" in in_group(vh.world)[-1]  # neutral text: the group name's script
    assert (await rows(vh, Group, Group.id == GROUP))[0].officer_id == "off-wang"
    assert "off-nobody" in (await dm(vh, "指派 grp-qiaozhen-01 off-nobody", "wxid_zhao"))[0]
    assert "grp-none" in (await dm(vh, "指派 grp-none off-li", "wxid_zhao"))[0]
    assert "不属于" in (await dm(vh, "指派 grp-hexi-01 off-li", "wxid_zhao"))[0]
    assert "用法" in (await dm(vh, "指派 off-li", "wxid_zhao"))[0]
    assert (await rows(vh, Group, Group.id == "grp-hexi-01"))[0].officer_id == "off-chen"
    # Another station's officer is not the leader's to give their group (the console refuses
    # it too): 河西's 陳警官 used to become 橋鎮村's officer, its tickets routed to him when
    # nobody was on duty, where he could read them but not act on them.
    answers = await dm(vh, "指派 grp-qiaozhen-01 off-chen", "wxid_zhao")
    assert "陳警官" in answers[0] and "不能指派" in answers[0] and "已指派" not in answers[0]
    assert (await rows(vh, Group, Group.id == GROUP))[0].officer_id == "off-wang"
    # Ordinary words starting with 指派 are not the command.
    await vh.say("指派出所的人来看看吧", group=GROUP, sender="wxid_yang")
    await vh.drain()
    assert len(in_group(vh.world)) == 2
    # The county leader's station is above every station.
    assert "已指派" in (await dm(vh, "指派 grp-hexi-01 off-li", "wxid_county"))[0]


# --- the helpers intake calls -----------------------------------------------------------------


@pytest.mark.both_reply_modes
async def test_maybe_remind_once_a_day_and_is_verified(db_url: str, world: FakeWorld) -> None:
    seen: list[tuple[bool, bool]] = []

    async def intake_stand_in(ctx: HandlerContext) -> bool:
        if ctx.event.kind != "message" or not ctx.event.text.startswith("报告"):
            return False
        seen.append((await is_verified(ctx.session, ctx.member.id), await maybe_remind(ctx)))
        return True

    h = await build_harness(
        db_url, world, handlers=[membership_events, verification_commands, intake_stand_in]
    )
    try:
        await h.say("报告 路灯坏了", group=GROUP)
        await h.say("报告 又坏了", group=GROUP)
        await h.drain()
        assert seen == [(False, True), (False, False)]
        reminders = private_to(world)
        assert len(reminders) == 1 and "实名 姓名 手机号" in reminders[0]
        assert in_group(world) == []
        h.clock.advance(86400)
        await h.say("报告 还是坏的", group=None)
        await h.drain()
        assert seen[-1] == (False, True)
        await bind(h)
        await h.say("报告 谢谢", group=None)
        assert seen[-1] == (True, False)
    finally:
        await h.close()


# --- WeChat Official Account ------------------------------------------------------------------


async def _oa(h: Harness, text: str, openid: str = "o_resident") -> str:
    response = await h.post_wechat_safe(h.wechat_text_xml(text, openid=openid))
    assert response.status_code == 200, response.text
    return str((await h.reply_to(response))["Content"])


@pytest.mark.both_reply_modes
async def test_binding_through_the_official_account(vh: Harness) -> None:
    answer = await _oa(vh, f"實名 張三 {PHONE}")
    assert "138****5678" in answer and "驗證碼已發送" in answer
    await vh.drain()
    code = code_in(sms_to(vh.world)[0])
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert "還可以再試4次" in await _oa(vh, wrong)  # the name was Traditional: so is the answer
    answer = await _oa(vh, code)
    assert "實名認證成功" in answer and "張*" in answer
    (binding,) = await rows(vh, Binding)
    assert binding.member_id == await member_id(vh, "o_resident", "wechat")
    answer = await _oa(vh, "我的信息")  # reads alike in both: the script they last wrote in
    assert "138****5678" in answer and "暫無" in answer
    assert "已注销实名" in await _oa(vh, "注销实名")
    assert await rows(vh, Binding) == []


async def test_official_account_refusals_are_passive_replies(vh: Harness) -> None:
    assert "手机号不正确" in await _oa(vh, "实名 张三 12345")
    assert "姓名" in await _oa(vh, "实名 张3 13812345678")
    assert "连心警民服务" in await _oa(vh, "654321")
    assert vh.world.state.by_path("/sms") == []


# --- the SMS senders --------------------------------------------------------------------------


async def test_log_sender_masks_the_number(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lianxin.sms")
    await LogSmsSender().send(
        idempotency_key="k1",
        group_id=None,
        user_id="138****5678",
        payload={"text": "验证码 123456", "extra": {"phone": PHONE}},
    )
    assert "138****5678" in caplog.text and "123456" in caplog.text
    assert PHONE not in caplog.text


async def test_sms_row_keeps_the_number_out_of_clear_columns(vh: Harness) -> None:
    await vh.say(f"实名 张三 {PHONE}", group=None)
    (sms,) = await rows(vh, OutboxMessage, OutboxMessage.channel == "sms")
    assert sms.user_id == "138****5678" and sms.status == "pending"
    # The number rides encrypted until the message is sent ...
    assert vh.runtime.cipher.decrypt_json(sms.payload_enc)["extra"]["phone"] == PHONE
    await vh.drain()
    assert sms_to(vh.world, PHONE)  # the gateway got the whole number
    # ... and is masked once it has been.
    (sms,) = await rows(vh, OutboxMessage, OutboxMessage.channel == "sms")
    assert sms.status == "sent"
    assert vh.runtime.cipher.decrypt_json(sms.payload_enc)["extra"]["phone"] == "138****5678"


@pytest.mark.parametrize(("command", "bound"), [("實名", "實名認證成功"), ("实名", "实名认证成功")])
async def test_the_answer_to_the_code_follows_the_request_not_the_name(
    vh: Harness, command: str, bound: str
) -> None:
    # 林美 reads the same in both scripts; the six digits tell none: the request decides.
    asked = await dm(vh, f"{command} 林美 {PHONE}")
    assert ("驗證碼已發送" if command == "實名" else "验证码已发送") in asked[0]
    answers = await dm(vh, code_in(sms_to(vh.world)[-1]))
    assert bound in answers[0]
