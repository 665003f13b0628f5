# Postventa in a container: one image for the web app, the worker and the release step.
#   docker build -t postventa .
#   docker run --env-file .env postventa postventa db upgrade      # release: migrations
#   docker run --env-file .env -p 8000:8000 postventa              # web (gunicorn)
#   docker run --env-file .env postventa postventa worker          # worker
# compose.yaml runs all three with PostgreSQL.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scheduler scheduler
COPY web web
COPY message_templates message_templates
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels "postventa[postgres]" \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 --user-group postventa
# Not root: the app needs no privilege, and a hole in it should not be one in the host.
USER 10001:10001
WORKDIR /home/postventa
EXPOSE 8000
# The shallow check: the web process answers and reaches the database. The worker's health is
# `/healthz?deep=1`, for the uptime check that pages someone.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=4)"]
CMD ["gunicorn", "--config", "python:web.gunicorn_config", "--bind", "0.0.0.0:8000", "web:create_app()"]
