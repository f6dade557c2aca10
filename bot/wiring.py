"""Wiring: the runtime built from settings (part of the composition root, like bot/app.py).

Only the composition root (bot/app.py, this module, bot/cli*.py, bot/demo/, bot/scheduler.py)
knows every layer; it builds the channel senders and callbacks and hands them to the rest in a
:class:`~bot.runtime.Runtime`.
"""

from __future__ import annotations

import httpx
from sqlalchemy.pool import QueuePool

from bot.channel_health import ChannelHealth
from bot.channels.bridge import BridgeClient
from bot.channels.http_lanes import lane_client
from bot.channels.sms import make_sms_sender
from bot.channels.wechat import WeChatApi, WeChatCallback
from bot.channels.wecom import WeComCallback
from bot.channels.wecom_reply import WeComReplySender
from bot.channels.wecom_robot import WeComRobotSender
from bot.clock import Clock, SystemClock
from bot.db import make_engine, make_sessions
from bot.leadership import Leadership
from bot.messages import Sender
from bot.pii import PiiCipher
from bot.runtime import Runtime
from bot.settings import Settings, decode_key, secret_value
from bot.texts import Texts
from bot.turns import Turns
from handlers.classify import Classifier


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    http: httpx.AsyncClient | None = None,
    senders: dict[str, Sender] | None = None,
    classifier: Classifier | None = None,
    texts: Texts | None = None,
) -> Runtime:
    """Wire the runtime from settings; ``senders`` adds or replaces channel senders.

    ``classifier`` and ``texts`` default to the packaged data files; both are read-only after
    loading, so callers that build many runtimes (the tests) can load them once and pass them.
    """
    clock = clock or SystemClock()
    engine = make_engine(settings.database.url, echo=settings.database.echo)
    sessions = make_sessions(engine)
    sec = settings.security
    cipher = PiiCipher(
        decode_key(secret_value(sec.pii_key)),
        [decode_key(secret_value(k)) for k in sec.pii_previous_keys],
    )
    # Lanes: the delivery worker's sends in flight cost what one does (bot/channels/http_lanes.py).
    http = http or lane_client(timeout=settings.bridge.timeout_s)
    runtime = Runtime(
        settings=settings,
        clock=clock,
        engine=engine,
        sessions=sessions,
        cipher=cipher,
        texts=texts or Texts.load(),
        classifier=classifier or Classifier.from_file(),
        http=http,
        health=ChannelHealth(settings.bridge.down_after_failures),
        leadership=Leadership.for_url(settings.database.url),
    )
    if engine.dialect.name == "sqlite":
        runtime.turns = Turns(1)
    elif isinstance(engine.pool, QueuePool):
        runtime.turns = Turns(engine.pool.size())
    b = settings.bridge
    if b.send_url and secret_value(b.secret):
        runtime.senders["bridge"] = BridgeClient(
            url=b.send_url, secret=secret_value(b.secret), client=http, clock=clock
        )
    w = settings.wechat
    if secret_value(w.token) and w.app_id:
        runtime.wechat = WeChatCallback(
            token=secret_value(w.token),
            app_id=w.app_id,
            aes_key=secret_value(w.encoding_aes_key) or None,
            original_id=w.original_id,
            window_s=settings.server.replay_window_s,
        )
        if secret_value(w.app_secret):
            runtime.senders["wechat"] = WeChatApi(
                base_url=w.api_base_url,
                app_id=w.app_id,
                app_secret=secret_value(w.app_secret),
                client=http,
                sessions=sessions,
                clock=clock,
            )
    runtime.senders["sms"] = make_sms_sender(settings, http, clock)
    runtime.senders["wecom_robot"] = WeComRobotSender(
        client=http, base_url=settings.bulletins.wecom_webhook_url
    )
    runtime.senders.update(senders or {})
    if settings.wecom.configured:
        runtime.wecom = WeComCallback.from_settings(
            settings.wecom, window_s=settings.server.replay_window_s
        )
    runtime.senders.setdefault(
        "wecom", WeComReplySender(robot=runtime.senders["wecom_robot"], sessions=sessions)
    )
    return runtime
