# The service image: gRPC service, the Bedrock emulator (for local runs) and the Envoy
# config renderer. Envoy itself runs from the official image (see docker-compose.yml).
FROM python:3.11-slim

WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY service ./service
COPY emulator ./emulator
COPY gateway ./gateway
COPY stack ./stack
RUN pip install --no-cache-dir '.[emulator]'

# The gRPC service listens on all interfaces inside the container.
ENV GRPC_HOST=0.0.0.0 GRPC_PORT=50051
EXPOSE 50051
USER nobody
CMD ["python", "-m", "service"]
