# syntax=docker/dockerfile:1
# Multi-stage: wheels are built in a throw-away stage; the runtime image has no compiler.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /venv && /venv/bin/pip install -r requirements.txt

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH="/venv/bin:$PATH" \
    DJANGO_SETTINGS_MODULE=config.settings DJANGO_ENV=production PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
RUN groupadd --system shop && useradd --system --gid shop --home /app --shell /usr/sbin/nologin shop
WORKDIR /app
COPY --from=build /venv /venv
COPY --chown=shop:shop . .
RUN mkdir -p /app/var /tmp/prometheus \
 && DJANGO_ENV=development python manage.py collectstatic --noinput --verbosity 0 \
 && chown -R shop:shop /app/var /tmp/prometheus
USER shop
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health/live', timeout=2)"
# web by default; the worker and beat override the command (see docker-compose.yml)
CMD ["sh", "-c", "gunicorn config.wsgi:application -c config/gunicorn.py --bind 0.0.0.0:${PORT} --workers ${WEB_CONCURRENCY:-2} --access-logfile - --timeout 30 --graceful-timeout 20 --no-control-socket"]
