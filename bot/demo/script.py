"""``lianxin demo --script``: the county's own stories, played through the real code paths.

Every message goes to ``/bridge/events`` with a real signature; everything the bot says comes
out of the outbox worker into the simulated bridge (and SMS inbox); the clock is a manual one so
the weekly bulletin can be reached. Each scene checks its outcome; the exit code says whether all
of them happened.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from bot.app import create_app, make_worker
from bot.channels.bridge import signed_headers
from bot.channels.simulated import SimulatedBridge, SimulatedSend
from bot.clock import ManualClock
from bot.demo import demo_settings, prepare
from bot.pii import mask_phone
from bot.pipeline import Pipeline
from bot.runtime import Runtime
from bot.services.tokens import create_token
from bot.settings import secret_value
from bot.wiring import build_runtime
from models.directory import Group, Officer
from models.people import Binding, Member
from models.tickets import Ticket

BOT = "連心"


@dataclass
class Player:
    """Drives the demo app as residents, officers and an admin would, and prints what happens."""

    runtime: Runtime
    client: httpx.AsyncClient
    bridge: SimulatedBridge
    sms: SimulatedBridge
    clock: ManualClock
    pipeline: Pipeline
    names: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    seen: int = 0
    seen_sms: int = 0
    counter: int = 0
    failures: list[str] = field(default_factory=list)

    def line(self, text: str) -> None:
        print(text.replace("\n", "\n        "), flush=True)

    async def say(self, who: str, text: str, group: str | None = None) -> httpx.Response:
        """Post a message as ``who`` through the signed bridge endpoint, then deliver replies."""
        self.counter += 1
        body = json.dumps(
            {
                "event_id": f"demo-{self.counter}",
                "type": "message",
                "timestamp": int(self.clock.now().timestamp()),
                "group": {"id": group, "name": self.groups.get(group, group)} if group else None,
                "sender": {"id": who, "nickname": self.names.get(who, who)},
                "message": {"type": "text", "text": text, "mentions": [], "media_url": None},
            },
            ensure_ascii=False,
        ).encode()
        secret = secret_value(self.runtime.settings.bridge.secret)
        where = f"[{self.groups[group]}]" if group else "[私聊]"
        self.line(f"  {where} {self.names.get(who, who)}: {text}")
        response = await self.client.post(
            "/bridge/events", content=body, headers=signed_headers(secret, body, self.clock.now())
        )
        await self.deliver()
        return response

    async def deliver(self) -> list[SimulatedSend]:
        """Process what was received, run the delivery worker and print every new message the
        bot sent."""
        await self.pipeline.drain()
        await make_worker(self.runtime).drain()
        new = self.bridge.sent[self.seen :]
        self.seen = len(self.bridge.sent)
        for item in new:
            text = item.payload.get("text", "")
            media = item.payload.get("media")
            if item.group_id:
                mention = "".join(
                    f"@{self.names.get(m, m)} " for m in item.payload.get("mentions") or []
                )
                self.line(
                    f"  [{self.groups.get(item.group_id, item.group_id)}] {BOT}: {mention}{text}"
                )
            else:
                self.line(
                    f"  [{BOT} → {self.names.get(item.user_id or '', item.user_id)} 私聊] {text}"
                )
            if media:
                self.line(
                    f"      ▶ {media.get('type')}: {media.get('title') or ''} {media.get('url')}"
                )
        for item in self.sms.sent[self.seen_sms :]:
            phone = (item.payload.get("extra") or {}).get("phone") or item.user_id or ""
            self.line(f"  [簡訊 → {mask_phone(phone)}] {item.payload.get('text', '')}")
        self.seen_sms = len(self.sms.sent)
        return new

    def check(self, ok: bool, what: str) -> None:
        """Record and print a scene's expected outcome."""
        self.line(f"  {'✔' if ok else '✘'} {what}")
        if not ok:
            self.failures.append(what)

    async def latest_ticket(self) -> Ticket | None:
        async with self.runtime.sessions() as s:
            return await s.scalar(select(Ticket).order_by(Ticket.id.desc()))

    def last_code(self) -> str | None:
        for item in reversed(self.bridge.sent):
            match = re.search(r"#([A-Z]\d{4,6})", item.payload.get("text", ""))
            if match:
                return match.group(1)
        return None


async def scene_verification(p: Player) -> None:
    p.line("\n■ 一、居民私聊實名認證(簡訊驗證碼)")
    await p.say("wxid_demo_yang", "實名 楊大山 13912345678")
    code = None
    if p.sms.sent:
        match = re.search(r"\b(\d{6})\b", p.sms.sent[-1].payload.get("text", ""))
        code = match.group(1) if match else None
    p.check(code is not None, "驗證碼由簡訊送出")
    if code:
        await p.say("wxid_demo_yang", code)
    async with p.runtime.sessions() as s:
        bound = await s.scalar(
            select(Binding.id)
            .join(Member, Member.id == Binding.member_id)
            .where(Member.sender_id == "wxid_demo_yang")
        )
    p.check(bound is not None, "實名綁定完成(姓名、手機加密保存)")


async def scene_farmland(p: Player) -> None:
    p.line("\n■ 二、村民請民警調解:4畝承包地被鄰居種了18年")
    await p.say(
        "wxid_demo_yang",
        "王警官,俺家那4畝承包地被鄰居老李家種了18年了,一直不還,想請派出所幫忙調解一下",
        group="grp-qiaozhen-01",
    )
    ticket = await p.latest_ticket()
    p.check(ticket is not None and ticket.category == "dispute", "登記為糾紛調解事項並派給值班民警")
    if ticket is None:
        return
    await p.say("wxid_wang", f"接單 #{ticket.code}")
    await p.say(
        "wxid_wang", f"#{ticket.code} 明天上午九點在村委會,我約上老李家一起調解,請帶上承包合同。"
    )
    answered = any("承包合同" in s.payload.get("text", "") and s.group_id for s in p.bridge.sent)
    p.check(answered, "民警的答覆送回群裡並@提問的村民")


async def scene_lost_boy(p: Player) -> None:
    p.line("\n■ 三、廣場上有個小男孩在哭,民警發全縣緊急通報,奶奶認領")
    await p.say(
        "wxid_demo_liu",
        "廣場上有個小男孩一直在哭,五六歲,穿紅衣服,找不到家人了",
        group="grp-qiaozhen-02",
    )
    await p.say(
        "wxid_zhao",
        "緊急通報 全縣 橋鎮廣場有一名五六歲男孩走失,穿紅色外套,家屬請速與橋鎮派出所聯繫",
    )
    reached = {
        s.group_id for s in p.bridge.sent if s.group_id and "走失" in s.payload.get("text", "")
    }
    p.check(len(reached) >= 3, f"通報同時送達全部{len(reached)}個警民群")
    await p.say("wxid_demo_grandma", "那是我孫子!我馬上去廣場,謝謝警察同志", group="grp-hexi-01")
    async with p.runtime.sessions() as s:
        linked = await s.scalar(select(Ticket).where(Ticket.alert_id.is_not(None)))
    p.check(linked is not None, "奶奶的回覆成為與通報關聯的事項,轉給民警")


async def scene_scam_question(p: Player) -> None:
    p.line("\n■ 四、「公安」來電要求轉賬到「安全賬戶」,是真的嗎?")
    await p.say(
        "wxid_demo_yang",
        "剛才有個自稱公安局的人打電話,說我涉嫌洗錢,要我把錢轉到安全賬戶,這是真的嗎?",
        group="grp-qiaozhen-01",
    )
    ticket = await p.latest_ticket()
    p.check(ticket is not None and ticket.category == "consultation", "登記為諮詢事項")
    if ticket:
        await p.say(
            "wxid_wang",
            f"#{ticket.code} 是詐騙!公安機關不會電話辦案,更沒有「安全賬戶」,千萬別轉賬,請掛斷並拉黑。",
        )
        p.check(
            any("安全賬戶" in s.payload.get("text", "") and s.group_id for s in p.bridge.sent[-3:]),
            "民警答覆送達",
        )


async def scene_knife(p: Player) -> None:
    p.line("\n■ 五、有人報告持刀傷人(緊急:立即提示撥打110)")
    await p.say(
        "wxid_demo_stranger", "快報警!村口有人拿刀砍人,已經有人流血了!", group="grp-qiaozhen-01"
    )
    replies = [s for s in p.bridge.sent if s.group_id and "110" in s.payload.get("text", "")]
    p.check(bool(replies), "即時回覆撥打110(未實名也不耽誤)")
    paged = {s.user_id for s in p.bridge.sent if s.user_id and "P1" in s.payload.get("text", "")}
    p.check({"wxid_wang", "wxid_zhao"} <= paged or len(paged) >= 2, "同時呼叫值班民警與所長(P1)")


async def scene_weekly_video(p: Player, admin_token: str) -> None:
    p.line("\n■ 七、每週反詐視頻推送到各村警民群")
    tz = ZoneInfo(p.runtime.settings.timezone)
    now_local = p.clock.now().astimezone(tz)
    # Every week at 10:00 on the weekday of tomorrow: not in quiet hours, reachable by the clock.
    tomorrow = (now_local + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    dow = (tomorrow.weekday() + 1) % 7  # cron: 0 = Sunday
    response = await p.client.post(
        "/api/v1/bulletins",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={
            "title": "反詐短視頻:冒充公檢法",
            "category": "anti-fraud",
            "text": "【反詐提醒】公檢法機關不會通過電話辦案,不會要求轉賬到「安全賬戶」。",
            "media": {
                "type": "video",
                "url": "https://example.invalid/anti-fraud.mp4",
                "title": "冒充公檢法詐騙",
            },
            "targets": {"tags": ["village"]},
            "schedule": {"cron": f"0 10 * * {dow}"},
        },
    )
    p.check(response.status_code == 201, f"管理員建立每週排程(HTTP {response.status_code})")
    if response.status_code != 201:
        return
    p.line(f"  (時鐘撥到 {tomorrow:%Y-%m-%d %H:%M})")
    p.clock.set(tomorrow + timedelta(seconds=1))
    await _tick(p)
    await p.deliver()
    videos = [s for s in p.bridge.sent if (s.payload.get("media") or {}).get("type") == "video"]
    groups = sorted({s.group_id or "" for s in videos})
    p.check(
        groups == ["grp-hexi-01", "grp-qiaozhen-01"], f"視頻送達兩個村級群,各一次({len(videos)}則)"
    )
    p.clock.advance(timedelta(hours=1))
    await _tick(p)
    await p.deliver()
    again = [s for s in p.bridge.sent if (s.payload.get("media") or {}).get("type") == "video"]
    p.check(len(again) == len(videos), "同一週不會重複推送")


async def scene_dispute_levels(p: Player) -> None:
    from bot.services.deadlines import sweep
    from models.disputes import DisputeCase

    p.line("\n■ 八、鄰里糾紛三級調解:村裡一週沒調好,升到派出所,達成協議,七天後回訪")
    await p.say(
        "wxid_demo_liu",
        "隔壁家的狗又跑到我家院子裡咬死了兩隻雞,說了好幾次都不管,請民警幫忙調解",
        group="grp-qiaozhen-02",
    )
    ticket = await p.latest_ticket()
    p.check(ticket is not None and ticket.category == "dispute", "登記為糾紛,村(社區)調解,期限7天")
    if ticket is None:
        return
    officer = next(w for w, n in p.names.items() if n == "王警官")
    await p.say(officer, f"定級 #{ticket.code} 黃 多次發生,可能激化")
    await p.say(officer, f"調解 #{ticket.code} 到兩家當面溝通,狗主人答應拴狗,賠償問題未談攏")
    p.line("  …… 七天過去,村(社區)調解期限已到 ……")
    p.clock.advance(timedelta(days=7, minutes=5))
    await sweep(p.runtime)
    await p.deliver()
    async with p.runtime.sessions() as s:
        case = await s.scalar(select(DisputeCase).where(DisputeCase.ticket_id == ticket.id))
    p.check(case is not None and case.level == "station", "期限已過,自動升到派出所調解(15天)")
    leader = next(w for w, n in p.names.items() if n == "趙所長")
    await p.say(leader, f"協議 #{ticket.code} 狗主人賠償兩隻雞120元,今後拴養;雙方握手言和")
    async with p.runtime.sessions() as s:
        case = await s.scalar(select(DisputeCase).where(DisputeCase.ticket_id == ticket.id))
    p.check(case is not None and case.status == "resolved", "在派出所一級達成協議,化解")
    p.line("  …… 七天後 ……")
    p.clock.advance(timedelta(days=7, hours=1))
    await p.say(officer, "待辦")
    await p.say(officer, f"回訪 #{ticket.code} 狗已拴好,兩家關係正常")
    async with p.runtime.sessions() as s:
        case = await s.scalar(select(DisputeCase).where(DisputeCase.ticket_id == ticket.id))
    p.check(
        case is not None and case.follow_ups_done == 1,
        "待辦列出到期回訪;回訪已記錄,30天時再回訪一次",
    )


async def scene_visits(p: Player, admin_token: str) -> None:
    from openpyxl import load_workbook

    from bot.services.report import build_report
    from bot.services.stats import make_period

    p.line("\n■ 六、入戶走訪:待訪名單、走訪記錄、新住戶入冊;本月統計與月報")
    wang = next(w for w, n in p.names.items() if n == "王警官")

    def told() -> str:
        return next(
            (s.payload.get("text", "") for s in reversed(p.bridge.sent) if s.user_id == wang), ""
        )

    await p.say(wang, "待訪")
    p.check("待訪 1 戶" in told() and "楊**" in told(), "「待訪」列出走訪計畫到期的獨居老人")
    await p.say(wang, "走訪 3組 看望獨居老人楊大爺,身體尚好,叮囑天冷注意取暖、防詐騙")
    p.check("對應 2 戶" in told(), "地址對應兩戶:請民警選擇")
    await p.say(wang, "走訪 1")
    p.check("已記錄走訪" in told() and "下次應訪" in told(), "走訪已記錄,走訪計畫順延一個月")
    await p.say(wang, "走訪 橋鎮村5組8號 新搬來的一家三口,登記了電動車,提醒勿私拉電線充電")
    await p.say(wang, "走訪 1 孫志強 13700005678")
    p.check("加入橋鎮村警民群的住戶名冊" in told(), "名冊上沒有的新住戶:確認後入冊並記錄走訪")
    tz = ZoneInfo(p.runtime.settings.timezone)
    today = p.clock.now().astimezone(tz).date()
    first = today - timedelta(days=30)
    response = await p.client.get(
        "/api/v1/stats",
        params={"from": first.isoformat(), "to": today.isoformat()},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    stats = response.json() if response.status_code == 200 else {}
    visits = stats.get("visits", {})
    p.line(
        f"  /api/v1/stats {first}~{today}: 走訪 {visits.get('count')} 次,"
        f"在冊 {visits.get('households')} 戶,覆蓋率 {visits.get('coverage')};"
        f"受理事項 {sum(stats.get('items', {}).values())} 件,"
        f"滿意率 {stats.get('satisfaction', {}).get('rate')}"
    )
    p.check(bool(visits.get("count")), "統計接口給出本月走訪與覆蓋率")
    async with p.runtime.sessions() as s:
        period = await make_period(
            s, timezone=p.runtime.settings.timezone, first=first, last=today, station=None
        )
        book, figures = await build_report(
            s,
            cipher=p.runtime.cipher,
            texts=p.runtime.texts,
            timezone=p.runtime.settings.timezone,
            period=period,
            script="hant",
            generated_at=p.clock.now(),
        )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.xlsx"
        book.save(path)
        summary = load_workbook(path).worksheets[0]
        rows = {r[2]: r for r in summary.iter_rows(min_row=6, values_only=True) if r[2]}
    p.line(f"  報表「{summary['A1'].value}」:{len(rows)} 項指標,例如")
    for key in ("visits.count", "visits.coverage", "items.suggestion"):
        label, value, _ = rows[key]
        p.line(f"    {label}: {value}")
    p.check(
        rows["visits.count"][1] == figures["visits"]["count"] == visits.get("count"),
        "月報匯總與統計接口一致",
    )


async def _tick(p: Player) -> None:
    from broadcasts.bulletins import bulletin_tick

    await bulletin_tick(p.runtime)


async def _seed(runtime: Runtime) -> None:
    """Demo residents who verified earlier (the farmer's neighbour, a shopkeeper, a grandmother),
    and the month before: households, visits, items, disputes, bulletins."""
    from bot.demo.seed import seed_month

    now = runtime.clock.now()
    cipher = runtime.cipher
    async with runtime.sessions.begin() as s:
        await seed_month(s, cipher, now=now)
    people = [
        ("wxid_demo_liu", "劉小芳", "13700002222", "grp-qiaozhen-02"),
        ("wxid_demo_grandma", "陳阿婆", "13600003333", "grp-hexi-01"),
    ]
    from models.people import GroupMember

    async with runtime.sessions.begin() as s:
        for sender, name, phone, group in people:
            member = Member(channel="bridge", sender_id=sender, first_seen_at=now, last_seen_at=now)
            s.add(member)
            await s.flush()
            s.add(
                Binding(
                    member_id=member.id,
                    name_enc=cipher.encrypt(name),
                    phone_enc=cipher.encrypt(phone),
                    phone_hash=cipher.lookup_hash(phone),
                    verified_at=now,
                )
            )
            s.add(GroupMember(group_id=group, member_id=member.id, joined_at=now))
        await s.flush()


async def _names(runtime: Runtime, p: Player) -> None:
    async with runtime.sessions() as s:
        for officer in (await s.scalars(select(Officer))).all():
            if officer.wechat_id:
                p.names[officer.wechat_id] = officer.name
        for group in (await s.scalars(select(Group))).all():
            p.groups[group.id] = group.name
    p.names.update(
        {
            "wxid_demo_yang": "楊大山",
            "wxid_demo_liu": "劉小芳",
            "wxid_demo_grandma": "陳阿婆",
            "wxid_demo_stranger": "路過的村民",
        }
    )


Scene = Callable[[Player], Awaitable[None]]


async def play(folder: Path) -> int:
    """Run every scene; 0 when all outcomes happened."""
    settings = demo_settings(folder)
    await prepare(settings)
    tz = ZoneInfo(settings.timezone)
    # A Monday morning, so the day shift is on and no quiet hours get in the way.
    start = datetime(2026, 11, 30, 9, 30, tzinfo=tz)
    clock = ManualClock(start)
    bridge = SimulatedBridge(clock=clock)
    sms = SimulatedBridge(clock=clock)
    runtime = build_runtime(settings, clock=clock, senders={"bridge": bridge, "sms": sms})
    app = create_app(runtime, background=False, close_runtime=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://demo"
    ) as client:
        p = Player(runtime, client, bridge, sms, clock, app.state.pipeline)
        await _names(runtime, p)
        await _seed(runtime)
        async with runtime.sessions.begin() as s:
            admin = await create_token(s, role="admin", name="demo", now=clock.now())
        print(
            "連心 Lianxin — 腳本演示(所有訊息經由 /bridge/events 簽名送入,機器人回覆經由發送佇列送出)"
        )
        scenes: list[Scene] = [
            scene_verification,
            scene_farmland,
            scene_lost_boy,
            scene_scam_question,
            scene_knife,
        ]
        for scene in scenes:
            try:
                await scene(p)
            except Exception as exc:  # a broken scene must not hide the others
                p.check(False, f"{scene.__name__} raised {type(exc).__name__}: {exc}")
        try:
            await scene_visits(p, admin)
        except Exception as exc:
            p.check(False, f"scene_visits raised {type(exc).__name__}: {exc}")
        try:
            await scene_weekly_video(p, admin)
        except Exception as exc:
            p.check(False, f"scene_weekly_video raised {type(exc).__name__}: {exc}")
        try:  # last: it lets weeks pass
            await scene_dispute_levels(p)
        except Exception as exc:
            p.check(False, f"scene_dispute_levels raised {type(exc).__name__}: {exc}")
    await runtime.aclose()
    print()
    if p.failures:
        print(f"✘ {len(p.failures)} step(s) did not happen:", *p.failures, sep="\n  - ")
        return 1
    print("✔ every scene played as expected")
    return 0


def run_script() -> int:
    """Entry point for ``lianxin demo --script``."""
    with tempfile.TemporaryDirectory(prefix="lianxin-script-") as tmp:
        return asyncio.run(play(Path(tmp)))


if __name__ == "__main__":
    sys.exit(run_script())
