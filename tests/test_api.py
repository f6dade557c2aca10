"""Tokens, auth on ``/api/v1``, and health endpoints."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from bot.app import create_app
from bot.cli import main
from bot.services.tokens import create_token, hash_token, list_tokens, revoke_token
from models.outbox import HELD, OutboxMessage
from models.tokens import ApiToken
from tests.fakes import FakeWorld
from tests.harness import Harness


async def _token(h: Harness, role: str) -> str:
    async with h.runtime.sessions.begin() as s:
        return await create_token(s, role=role, name=f"t-{role}", now=h.clock.now())  # type: ignore[arg-type]


async def test_no_token_is_401_bad_token_401(harness: Harness) -> None:
    assert (await harness.client.get("/api/v1/outbox")).status_code == 401
    r = await harness.client.get("/api/v1/outbox", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


async def test_officer_token_on_admin_route_is_403(harness: Harness) -> None:
    officer = await _token(harness, "officer")
    headers = {"Authorization": f"Bearer {officer}"}
    assert (await harness.client.get("/api/v1/outbox", headers=headers)).status_code == 403
    me = await harness.client.get("/api/v1/whoami", headers=headers)
    assert me.status_code == 200 and me.json() == {"role": "officer", "name": "t-officer"}


async def test_admin_sees_outbox_totals_without_content(harness: Harness) -> None:
    admin = await _token(harness, "admin")
    await harness.say("你好", group=None)
    r = await harness.client.get("/api/v1/outbox", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200
    body = r.json()
    assert body["totals"] == {"pending": 1}
    assert "text" not in body["rows"][0] and "payload_enc" not in body["rows"][0]
    # Every status the totals can name filters the rows too.
    async with harness.runtime.sessions.begin() as s:
        await s.execute(update(OutboxMessage).values(status=HELD))
    for status, rows in (("held", 1), ("cancelled", 0)):
        r = await harness.client.get(
            f"/api/v1/outbox?status={status}", headers={"Authorization": f"Bearer {admin}"}
        )
        assert r.status_code == 200 and len(r.json()["rows"]) == rows, r.text


async def test_only_the_hash_is_stored(harness: Harness) -> None:
    token = await _token(harness, "admin")
    async with harness.runtime.sessions() as s:
        hashes = (await s.scalars(select(ApiToken.token_hash))).all()
    assert hashes == [hash_token(token)] and token not in hashes


async def test_health_and_readiness(harness: Harness) -> None:
    assert (await harness.client.get("/healthz")).json() == {"ok": True}
    ready = await harness.client.get("/readyz")
    assert ready.status_code == 200
    await harness.runtime.engine.dispose()
    harness.runtime.engine.url  # noqa: B018 - engine stays usable after dispose
    # Point the runtime at a database that cannot answer.
    from bot.db import make_engine

    harness.runtime.engine = make_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    down = await harness.client.get("/readyz")
    assert down.status_code == 503 and down.json()["database"] == "down"


def test_token_create_cli_prints_a_token_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'x.db'}\n", "utf-8")
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    capsys.readouterr()
    assert (
        main(["--config", str(config), "token", "create", "--role", "admin", "--name", "ops"]) == 0
    )
    token = capsys.readouterr().out.strip()
    assert token.startswith("lx_") and len(token) > 30

    # Listed by id, role and name (never the token); revoked by id, once.
    cli = ["--config", str(config), "token"]
    assert main([*cli, "list"]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("1\tadmin\tops\tcreated ") and token not in listing
    assert listing.strip().endswith("+0800")  # the bureau's wall clock, and it says so
    assert main([*cli, "revoke", "1"]) == 0
    assert main([*cli, "revoke", "1"]) == 1
    assert "no live token 1" in capsys.readouterr().err
    assert main([*cli, "list"]) == 0
    assert "\trevoked " in capsys.readouterr().out
    # An id no row can have is a usage error, not an overflow traceback.
    with pytest.raises(SystemExit) as usage:
        main([*cli, "revoke", "99999999999999999999999"])
    assert usage.value.code == 2 and "not a token id" in capsys.readouterr().err


async def test_a_revoked_token_is_refused(harness: Harness) -> None:
    admin = await _token(harness, "admin")
    headers = {"Authorization": f"Bearer {admin}"}
    assert (await harness.client.get("/api/v1/tickets", headers=headers)).status_code == 200
    async with harness.runtime.sessions.begin() as session:
        [row] = await list_tokens(session)
        assert await revoke_token(session, row.id, now=harness.clock.now())
    assert (await harness.client.get("/api/v1/tickets", headers=headers)).status_code == 401


async def test_tickets_listing_filters_and_needs_a_token(harness: Harness) -> None:
    await harness.load_directory()
    await harness.bind("wxid_yang", group="grp-qiaozhen-01")
    await harness.say("我家的电动车被偷了", group="grp-qiaozhen-01", sender="wxid_yang")
    await harness.say("建议村口装个摄像头", group="grp-qiaozhen-01", sender="wxid_yang")
    assert (await harness.client.get("/api/v1/tickets")).status_code == 401
    # Every station's tickets are the county's view: an officer's token is refused (403).
    officer = await _token(harness, "officer")
    refused = await harness.client.get(
        "/api/v1/tickets", headers={"Authorization": f"Bearer {officer}"}
    )
    assert refused.status_code == 403
    admin = await _token(harness, "admin")
    headers = {"Authorization": f"Bearer {admin}"}
    everything = (await harness.client.get("/api/v1/tickets", headers=headers)).json()
    assert sorted(t["category"] for t in everything) == ["report", "suggestion"]
    reports = (await harness.client.get("/api/v1/tickets?category=report", headers=headers)).json()
    assert [t["priority"] for t in reports] == [2]
    assert set(reports[0]) >= {"code", "category", "priority", "status", "created_at"}
    bad = await harness.client.get("/api/v1/tickets?status=lost", headers=headers)
    assert bad.status_code == 422
    # Paging: two pages of one, in the order of the whole list, then nothing.
    pages = [
        (await harness.client.get(f"/api/v1/tickets?limit=1&offset={n}", headers=headers)).json()
        for n in range(3)
    ]
    assert [p[0]["code"] for p in pages[:2]] == [t["code"] for t in everything] and pages[2] == []


async def test_an_admin_can_audit_a_tickets_timeline_without_its_words(
    harness: Harness,
) -> None:
    await harness.load_directory()
    await harness.bind("wxid_yang", name="楊某某", phone="13912345678", group="grp-qiaozhen-01")
    await harness.say("我家的电动车被偷了", group="grp-qiaozhen-01", sender="wxid_yang")
    [t] = await harness.tickets()
    await harness.say(f"联系 #{t.code}", group=None, sender="wxid_zhao")  # the leader
    admin = {"Authorization": f"Bearer {await _token(harness, 'admin')}"}
    officer = {"Authorization": f"Bearer {await _token(harness, 'officer')}"}
    path = f"/api/v1/tickets/{t.code}/events"
    assert (await harness.client.get(path, headers=officer)).status_code == 403
    r = await harness.client.get(path, headers=admin)
    assert r.status_code == 200
    events = r.json()
    [look] = [e for e in events if e["kind"] == "contact_shown"]
    assert look["actor"] == "officer:off-zhao" and events[0]["kind"] == "opened"
    assert "电动车" not in r.text and "13912345678" not in r.text and "楊" not in r.text
    assert (
        await harness.client.get("/api/v1/tickets/Z9999/events", headers=admin)
    ).status_code == 404
    assert (
        await harness.client.get("/api/v1/tickets/bad/events", headers=admin)
    ).status_code == 422


async def test_api_docs_work_offline(harness: Harness) -> None:
    admin = {"Authorization": f"Bearer {await _token(harness, 'admin')}"}
    page = await harness.client.get("/docs", headers=admin)
    assert page.status_code == 200
    assert "cdn." not in page.text and "https://" not in page.text.split("<body>")[1]
    js = await harness.client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert (await harness.client.get("/docs/assets/../../settings.py")).status_code == 404
    schema = await harness.client.get("/openapi.json", headers=admin)
    assert "/api/v1/tickets" in schema.json()["paths"]


async def test_api_docs_answer_only_an_admin_token(harness: Harness) -> None:
    # They map every admin route and its parameters: a scanner's first read.
    officer = {"Authorization": f"Bearer {await _token(harness, 'officer')}"}
    for path in ("/docs", "/openapi.json"):
        anonymous = await harness.client.get(path)
        assert anonymous.status_code == 401, path
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert "/api/v1/tickets" not in anonymous.text
        assert (await harness.client.get(path, headers=officer)).status_code == 403
    # The two Swagger UI files are the same for everyone.
    assert (await harness.client.get("/docs/assets/swagger-ui.css")).status_code == 200


async def test_public_docs_open_them_to_everyone(db_url: str, world: FakeWorld) -> None:
    h = Harness.build(db_url, world, server={"public_docs": True})
    try:
        assert (await h.client.get("/docs")).status_code == 200
        assert "/api/v1/tickets" in (await h.client.get("/openapi.json")).json()["paths"]
        # The API itself still wants its token.
        assert (await h.client.get("/api/v1/outbox")).status_code == 401
    finally:
        await h.close()


async def test_every_response_carries_the_security_headers(harness: Harness) -> None:
    admin = {"Authorization": f"Bearer {await _token(harness, 'admin')}"}
    responses = {
        "json": await harness.client.get("/healthz"),
        "error": await harness.client.get("/api/v1/outbox"),
        "not found": await harness.client.get("/nowhere"),
        "bridge": await harness.post_bridge(harness.bridge_body("你好")),
        "script": await harness.client.get("/docs/assets/swagger-ui-bundle.js"),
        "html": await harness.client.get("/docs", headers=admin),
    }
    for kind, r in responses.items():
        assert r.headers["x-content-type-options"] == "nosniff", kind
        assert r.headers["referrer-policy"] == "no-referrer", kind
        assert "server" not in r.headers, kind
    # Pages of ours cannot be framed by another site (clickjacking); other answers need not say.
    html = responses.pop("html")
    assert html.headers["content-type"].startswith("text/html")
    assert html.headers["x-frame-options"] == "DENY"
    assert html.headers["content-security-policy"] == "frame-ancestors 'none'"
    for kind, r in responses.items():
        assert "x-frame-options" not in r.headers, kind


class Crash(Exception):
    """What the test route raises."""


async def test_a_crash_answers_500_with_the_security_headers_and_is_still_raised(
    harness: Harness,
) -> None:
    # Starlette's outermost error handler wrote the 500 outside every middleware: no nosniff,
    # no no-referrer, no CSP. A route that raises, added on this app instance for the test.
    app = create_app(harness.runtime, background=False, close_runtime=False)

    async def crash() -> None:
        raise Crash("boom")

    for path in ("/crash", "/console/crash", "/api/v1/crash"):
        app.add_api_route(path, crash)
    # Ahead of the console's last route, which answers every other console address.
    app.router.routes[:0] = [app.router.routes.pop() for _ in range(3)][::-1]
    # As the server sees it: the exception comes out of the app, to be logged …
    raising = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lx")
    with pytest.raises(Crash):
        await raising.get("/crash")
    # … after the 500 went out, with the headers.
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://lx"
    )
    for path in ("/crash", "/console/crash", "/api/v1/crash"):
        r = await client.get(path)
        assert r.status_code == 500 and r.text == "Internal Server Error", path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "no-referrer", path
        assert r.headers["x-frame-options"] == "DENY", path
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert r.headers["cache-control"] == "no-store", path
        assert "server" not in r.headers and "boom" not in r.text, path


async def test_empty_ticket_filters_mean_no_filter(harness: Harness) -> None:
    admin = await _token(harness, "admin")
    r = await harness.client.get(
        "/api/v1/tickets?status=&category=", headers={"Authorization": f"Bearer {admin}"}
    )
    assert r.status_code == 200 and r.json() == []


async def test_tickets_filter_by_station_and_its_subtree(harness: Harness) -> None:
    """A client asking for one station's tickets gets that station's (and those below it), as
    /disputes and /visits filter; it got every station's, the parameter silently ignored."""
    await harness.load_directory()
    await harness.bind("wxid_yang", group="grp-qiaozhen-01")
    await harness.bind("wxid_ma", group="grp-hexi-01", name="馬某某", phone="13812345678")
    await harness.say(
        "村口路灯坏了好几天了晚上黑咕隆咚的", group="grp-qiaozhen-01", sender="wxid_yang"
    )
    await harness.say("俺家隔壁天天半夜放炮仗吵死人咯😡", group="grp-hexi-01", sender="wxid_ma")
    headers = {"Authorization": f"Bearer {await _token(harness, 'admin')}"}

    async def stations(query: str) -> list[str | None]:
        r = await harness.client.get(f"/api/v1/tickets?{query}", headers=headers)
        assert r.status_code == 200, r.text
        return sorted(t["station_id"] for t in r.json())

    assert await stations("station=qiaozhen") == ["qiaozhen"]
    assert await stations("station=hexi") == ["hexi"]
    assert await stations("station=county") == ["hexi", "qiaozhen"]  # the root: its subtree
    assert await stations("station=") == ["hexi", "qiaozhen"]  # empty: no filter
    unknown = await harness.client.get("/api/v1/tickets?station=qiaozen", headers=headers)
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["query", "station"]
    assert "qiaozen" in unknown.json()["detail"][0]["msg"]


async def test_tickets_open_means_every_status_but_closed(harness: Harness) -> None:
    """``?status=open`` (the disputes' word for what is still in hand) lists the tickets not
    yet closed, whatever their step; before, it was a 422."""
    await harness.load_directory()
    await harness.bind("wxid_yang", group="grp-qiaozhen-01")
    await harness.say("村口路灯坏了好几天了", group="grp-qiaozhen-01", sender="wxid_yang")
    await harness.say("我家的电动车昨晚被偷了", group="grp-qiaozhen-01", sender="wxid_yang")
    lamp, bike = sorted(await harness.tickets(), key=lambda t: t.id)
    await harness.say(f"#{lamp.code} 已报给电力所,明天来修", group=None, sender="wxid_wang")
    await harness.say(f"结案 #{lamp.code}", group=None, sender="wxid_wang")
    headers = {"Authorization": f"Bearer {await _token(harness, 'admin')}"}

    async def codes(query: str) -> list[str]:
        r = await harness.client.get(f"/api/v1/tickets?{query}", headers=headers)
        assert r.status_code == 200, r.text
        return sorted(t["code"] for t in r.json())

    assert await codes("status=closed") == [lamp.code]
    assert await codes("status=open") == [bike.code]
    assert await codes("status=open&category=report") == [bike.code]
    assert await codes("status=") == sorted([lamp.code, bike.code])


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/tickets?stauts=new",
        "/api/v1/disputes?colur=red",
        "/api/v1/visits?form=2026-12-01",
        "/api/v1/bulletins?state=active",
        "/api/v1/alerts?station=qiaozhen",
        "/api/v1/outbox?page=2",
        "/api/v1/tickets/M0001/events?limit=5",
    ],
)
async def test_a_query_parameter_a_route_does_not_take_is_422_naming_it(
    harness: Harness, path: str
) -> None:
    """A misspelt or unsupported filter was ignored: the whole list came back as if filtered."""
    name = path.split("?")[1].split("=")[0]
    # Without a token it is still 401 (the route's parameters are nobody else's business).
    assert (await harness.client.get(path)).status_code == 401
    headers = {"Authorization": f"Bearer {await _token(harness, 'admin')}"}
    r = await harness.client.get(path, headers=headers)
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["query", name] and "unknown query parameter" in error["msg"]


async def test_a_filter_given_twice_is_422_naming_it(harness: Harness) -> None:
    """``?category=report&category=help`` answered the help tickets alone (the last value), as
    if the first had not been asked for."""
    headers = {"Authorization": f"Bearer {await _token(harness, 'admin')}"}
    r = await harness.client.get(
        "/api/v1/tickets?category=report&category=help&status=", headers=headers
    )
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["query", "category"] and "more than once" in error["msg"]
    ok = await harness.client.get("/api/v1/tickets?category=help&status=", headers=headers)
    assert ok.status_code == 200


async def test_outbox_rows_come_in_pages(harness: Harness) -> None:
    headers = {"Authorization": f"Bearer {await _token(harness, 'admin')}"}
    for text in ("你好", "在吗", "有人没"):
        await harness.say(text, group=None)
    whole = (await harness.client.get("/api/v1/outbox", headers=headers)).json()["rows"]
    pages = [
        (await harness.client.get(f"/api/v1/outbox?limit=2&offset={n}", headers=headers)).json()
        for n in (0, 2)
    ]
    assert [r["id"] for p in pages for r in p["rows"]] == [r["id"] for r in whole]
    assert len(whole) == 3 and all(p["totals"] == {"pending": 3} for p in pages)


async def test_the_api_page_names_every_error_a_route_answers(harness: Harness) -> None:
    """The OpenAPI document listed only 200 and 422: a client generated from it knew nothing
    of 401, 403, 404 or 409, and the media upload had no body to send."""
    headers = {"Authorization": f"Bearer {await _token(harness, 'admin')}"}
    spec = (await harness.client.get("/openapi.json", headers=headers)).json()
    assert spec["components"]["schemas"]["ErrorOut"]["properties"]["detail"]["type"] == "string"
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert "401" in codes, (method, path)
            if path != "/api/v1/whoami":
                assert "403" in codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            if method == "patch" or path.endswith(("/{action}", "/recall", "/correct")):
                assert "409" in codes, (method, path)
    post = spec["paths"]["/api/v1/bulletins"]["post"]
    assert "409" in post["responses"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in post["parameters"])
    upload = spec["paths"]["/api/v1/media"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"413", "415"} <= set(upload["responses"])
    assert "text/plain" in next(
        iter(spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"])
    )


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    # A deployment script checks what it installed before it migrates.
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("lianxin ")
