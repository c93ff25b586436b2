# workflow-event-aggregator: a small image that runs the aggregator as a
# non-root user.
#
#   docker build -t workflow-event-aggregator .
#   docker run -v "$PWD/config.yml:/config/config.yml:ro" -p 9090:9090 \
#       workflow-event-aggregator
#
# The configuration is mounted at /config/config.yml. For the health check
# to reach /healthz, the config must serve HTTP on all interfaces of the
# container, on the port in HEALTHCHECK_PORT (9090 unless overridden):
#
#   http:
#     listen: 0.0.0.0:9090
#
# Secrets stay out of the file: write ${VAR} in it and pass the variable
# with `docker run -e VAR=...` (or an env_file in compose).

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HEALTHCHECK_PORT=9090

# A dedicated unprivileged user with no login shell and no home to write to.
RUN groupadd --system --gid 10001 aggregator \
    && useradd --system --uid 10001 --gid aggregator --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin aggregator

WORKDIR /app

# Only the runtime dependencies; the test and lint tools are not installed.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY aggregator.py ./
COPY event_aggregator/ ./event_aggregator/
COPY stan_client/ ./stan_client/

USER aggregator:aggregator

EXPOSE 9090

# Liveness: /healthz answers 200 while the worker threads are alive.
# python:slim has no curl, so urllib does the request; an HTTP error or a
# refused connection raises, and the non-zero exit marks the check failed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['HEALTHCHECK_PORT'], timeout=4)"]

CMD ["python", "aggregator.py", "/config/config.yml"]
