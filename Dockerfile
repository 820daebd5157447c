# The bot's image: python -m bot on port 3000, as a non-root user, with the PostgreSQL driver.
#   docker build -t claude-slack-bot .
#   docker run --env-file .env -p 3000:3000 -v bot-data:/app/data claude-slack-bot
# compose.yaml runs two of these on PostgreSQL. Settings come from the environment: .env is
# never copied in (see .dockerignore). The README's "Production" section says the rest.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# The dependencies first, in a layer that only a change to pyproject.toml rebuilds: the
# project's own list plus its `postgres` extra, read from pyproject.toml.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the project itself, with the PostgreSQL extra. Editable, so that migrations/ and
# alembic.ini, which the bot reads beside its package at start-up, are the ones in /app.
COPY README.md alembic.ini ./
COPY migrations ./migrations
COPY bot ./bot
RUN pip install -e '.[postgres]'

# An unprivileged user with a numeric id (an orchestrator can verify it is not root), owning
# only ./data, where the default SQLite database goes (mount a volume there to keep it).
RUN groupadd --system --gid 10001 bot \
    && useradd --system --uid 10001 --gid bot --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin bot \
    && mkdir -p /app/data \
    && chown bot:bot /app/data
USER 10001:10001

# matplotlib (the App Home chart) keeps its font cache here: /app is not writable.
ENV HOST=0.0.0.0 \
    PORT=3000 \
    MPLCONFIGDIR=/tmp/matplotlib
EXPOSE 3000

# Liveness only: an unreachable Slack makes /readyz 503, never this check (no curl in the
# image: Python's urllib does it, and fails on anything but a 2xx).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('PORT', '3000'), timeout=4)"]

# SIGTERM (what `docker stop` sends) stops it gracefully: allow SHUTDOWN_GRACE_SECONDS plus
# about 15 s before the kill (compose.yaml: stop_grace_period).
CMD ["python", "-m", "bot"]
