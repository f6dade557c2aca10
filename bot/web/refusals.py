"""What the channel endpoints answer when the database cannot take an event.

Nothing was journaled, so nothing was answered as taken: a 503 with ``Retry-After`` tells the
sender (the bridge, WeChat, WeCom) to send the same event again, which is journaled once the
database is back, or answered as the duplicate it is when its row had been committed after all.
"""

from __future__ import annotations

# Long enough for a restarted database or a replaced connection, short enough that a resident's
# message is not held up for long.
RETRY_AFTER_S = 5
DATABASE_UNAVAILABLE = "database unavailable, retry"
RETRY_HEADERS = {"Retry-After": str(RETRY_AFTER_S)}
