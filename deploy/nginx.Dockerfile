# nginx for deploy/compose.yaml: Debian's own nginx on bookworm-slim (no registry image needed).
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/*
COPY nginx.conf /etc/nginx/nginx.conf
COPY nginx-upstreams.sh /usr/local/bin/nginx-upstreams
EXPOSE 8080
CMD ["nginx-upstreams"]
