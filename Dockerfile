# lstmgen: build and test in Debian bookworm, run in bookworm-slim with only the runtime libraries.
#   docker build -t lstmgen . && docker run -p 8080:8080 lstmgen

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config meson ninja-build python3 \
      libopenblas-dev libcjson-dev libmicrohttpd-dev libsqlite3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The unit, CLI and HTTP suites run here; the PyTorch parity test skips (no torch in this image).
RUN meson setup /build --buildtype=release \
 && meson compile -C /build \
 && meson test -C /build --print-errorlogs --no-suite container --no-suite slow \
 && strip /build/lstmgen

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libopenblas0-pthread libcjson1 libmicrohttpd12 libsqlite3-0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin lstmgen \
 && mkdir -p /data/models /data/db \
 && chown -R lstmgen:lstmgen /data
COPY --from=build /build/lstmgen /usr/local/bin/lstmgen
# The bundled models are part of the image and read-only; trained models go to /data/models.
COPY models/*.safetensors /opt/lstmgen/models/
ENV LSTMGEN_HOST=0.0.0.0 \
    LSTMGEN_PORT=8080 \
    LSTMGEN_MODELS=/data/models:/opt/lstmgen/models \
    LSTMGEN_DB=/data/lstmgen.db
USER lstmgen
WORKDIR /data
VOLUME /data
EXPOSE 8080
# bash's /dev/tcp: the slim image has no curl, and none is needed for one GET.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${LSTMGEN_PORT:-8080} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
CMD ["lstmgen", "serve"]
