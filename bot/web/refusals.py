"""What the channel endpoints do when they do not take a request: count it, and when the
database could not take the event, answer 503 with ``Retry-After``.

Nothing was journaled for a refused request. After a 503 the sender (the bridge, WeChat,
WeCom) sends the same event again, which is journaled once the database is back, or answered
as the duplicate it is when its row had been committed after all.
"""

from __future__ import annotations

from bot.runtime import Runtime

# Long enough for a restarted database or a replaced connection, short enough that a resident's
# message is not held up for long.
RETRY_AFTER_S = 5
DATABASE_UNAVAILABLE = "database unavailable, retry"
RETRY_HEADERS = {"Retry-After": str(RETRY_AFTER_S)}


def count_refused(runtime: Runtime, endpoint: str, status: int) -> None:
    """Count a request ``endpoint`` (``bridge``, ``wechat``, ``wecom``) answered with
    ``status`` without storing its event: a sender with the wrong secret, a clock off, a
    broken bridge or an outage shows on ``/metrics`` (``lianxin_requests_refused_total``)."""
    runtime.metrics.requests_refused.labels(endpoint, str(status)).inc()
