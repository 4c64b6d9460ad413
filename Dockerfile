# syntax=docker/dockerfile:1
# The service image, two targets:
#   production (the default, last stage): the gRPC service and the Envoy config renderer,
#     nothing else: no emulator, moto, Envoy binary or dev tools.
#   local (`docker build --target local`, docker-compose.yml): the same plus the Bedrock
#     emulator and local S3.
# Envoy itself runs from the official envoyproxy/envoy image beside it.
# Pinned to an exact tag; pin a digest too with --build-arg PYTHON_IMAGE=python:…@sha256:….
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS python
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# Dependencies in their own layer, rebuilt only when pyproject.toml changes. The list is read
# from pyproject.toml itself, so it has one source.
FROM python AS dependencies
WORKDIR /build
COPY pyproject.toml ./
RUN /usr/local/bin/python -m venv /opt/venv \
 && python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies']))" > runtime.txt \
 && pip install -r runtime.txt

FROM dependencies AS local-dependencies
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['optional-dependencies']['emulator']))" > emulator.txt \
 && pip install -r emulator.txt

# The project as a wheel: the Envoy template, Lua filter and descriptor set are package data.
FROM python AS wheel
WORKDIR /build
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY service ./service
COPY emulator ./emulator
COPY gateway ./gateway
COPY stack ./stack
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python AS runtime
WORKDIR /app
# Inside the container the service listens on all interfaces; HOME is a writable place for
# libraries that want one (the root filesystem can be read-only: mount /tmp).
ENV GRPC_HOST=0.0.0.0 \
    GRPC_PORT=50051 \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=9464 \
    HOME=/tmp
EXPOSE 50051 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "service.healthcheck"]
CMD ["python", "-m", "service"]

FROM runtime AS local
COPY --from=local-dependencies /opt/venv /opt/venv
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install --no-deps /wheels/*.whl
# A numeric user, so Kubernetes can verify runAsNonRoot.
USER 10001:10001

FROM runtime AS production
COPY --from=dependencies /opt/venv /opt/venv
# The wheel also carries the emulator and the local stack (for `pip install` users); this
# image does not need them.
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install --no-deps /wheels/*.whl \
 && site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && rm -rf "$site/emulator" "$site/stack"
USER 10001:10001
