FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY broadcasts ./broadcasts
COPY models ./models
COPY config.yaml ./config.yaml
RUN pip install . && useradd --create-home --uid 10001 lianxin && mkdir -p /data && chown lianxin /data

USER lianxin
# Everything the service writes lives under /data (its volume): the SQLite default, and the
# bulletins' uploaded media (/app belongs to root).
ENV LIANXIN_CONFIG=/app/config.yaml LIANXIN__DATABASE__URL=sqlite+aiosqlite:////data/lianxin.db \
    LIANXIN__BULLETINS__MEDIA_DIR=/data/media
EXPOSE 8000
# Liveness (/healthz): /readyz is 503 whenever the database is down, which
# restarting this container would not mend; it is for a load balancer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"
CMD ["lianxin", "serve", "--host", "0.0.0.0", "--port", "8000"]
