# nginx for deploy/compose.yaml: Debian's own nginx on bookworm-slim (no registry image needed).
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/*
COPY nginx.conf /etc/nginx/nginx.conf
EXPOSE 8080
# the resolver is the container network's DNS server, whatever its address: read it at start
CMD ["sh", "-c", "echo \"resolver $(awk '/^nameserver/ {print $2; exit}' /etc/resolv.conf) valid=2s ipv6=off;\" > /etc/nginx/resolver.conf && exec nginx -g 'daemon off;'"]
