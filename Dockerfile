# Beffroi's container image: the runtime dependencies only, a non-root user, and nothing
# written outside /var/cache/beffroi (so it runs with a read-only root filesystem).
#
#   docker build -t beffroi .
#   docker run --rm --read-only -p 8080:8080 beffroi          # the offline demo
#   docker compose up                                         # Redis, a poller, two API processes
#
# See docs/DEPLOYMENT.md ("Containers"). The base image can be swapped (a mirror, a pinned
# digest) with --build-arg PYTHON_IMAGE=...; both stages must use the same one, since the
# virtualenv built in the first is run by the interpreter of the second.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the pinned runtime dependencies and the project, into one virtualenv ---------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
# The lock alone first, so this layer is reused while only the code changes.
COPY requirements.lock /src/
RUN /opt/venv/bin/python -m pip install --no-deps -r /src/requirements.lock
COPY pyproject.toml README.md /src/
COPY aggregator /src/aggregator
COPY connectors /src/connectors
# --no-deps everywhere: the lock is the whole list, and `pip check` proves it is complete.
# Then the installers go: the image runs the application, it installs nothing.
RUN /opt/venv/bin/python -m pip install --no-deps --no-build-isolation /src \
    && /opt/venv/bin/python -m pip check \
    && /opt/venv/bin/python -m pip uninstall --yes --quiet setuptools wheel packaging pip

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 beffroi \
    && useradd --system --uid 10001 --gid beffroi --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin beffroi \
    && mkdir -p /var/cache/beffroi \
    && chown beffroi:beffroi /var/cache/beffroi
COPY --from=build /opt/venv /opt/venv
# The demo configuration and its bundled data; mount your own config over /app/config.
COPY config /app/config
WORKDIR /app
# BEFFROI_HOST/PORT/GTFS_CACHE are read by the bundled configs (${VAR:-default}); the bytecode
# was compiled at install time, and the root filesystem may be read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BEFFROI_HOST=0.0.0.0 \
    BEFFROI_PORT=8080 \
    BEFFROI_GTFS_CACHE=/var/cache/beffroi
# Compiled GTFS timetables (sources with cache_dir); the only place the application writes.
VOLUME /var/cache/beffroi
# Numeric, so that a platform checking "runs as non-root" (runAsNonRoot) can tell.
USER 10001:10001
EXPOSE 8080
# No curl in a slim image: the interpreter asks /healthz (any answer but 2xx fails it).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BEFFROI_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["beffroi"]
CMD ["serve", "-c", "config/demo.yaml"]
