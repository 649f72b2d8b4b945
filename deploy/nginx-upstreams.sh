#!/bin/sh
# nginx's entrypoint in deploy/compose.yaml: writes the upstream groups (the replicas, least
# connections; the trainer) from the compose network's DNS, starts nginx, and every 2 s writes
# them again and reloads nginx when a name's addresses changed. nginx 1.22 (Debian 12) resolves
# an upstream block's names only at start, and a replica that restarts or is added comes back at
# a new address; a reload is graceful (requests in flight finish on the old workers).
set -u
conf=/etc/nginx/upstreams.conf

addresses() { # NAME: its IPv4 addresses, sorted, one line
    getent ahostsv4 "$1" | awk '{print $1}' | sort -u | tr '\n' ' '
}

render() { # prints the upstream groups; fails if a name has no address now
    for group in generate train; do
        ips=$(addresses "$group")
        [ -n "$ips" ] || return 1
        echo "upstream $group {"
        [ "$group" = generate ] && echo "    least_conn;"
        echo "    zone $group 64k;    # the connection counts, shared by every worker"
        for ip in $ips; do echo "    server $ip:8080 max_fails=1 fail_timeout=2s;"; done
        echo "}"
    done
}

# At start the services may still be coming up: wait for their names, a minute at most, then
# start anyway with an address that refuses (502) until they appear.
ready=
for _ in $(seq 1 60); do render > "$conf" 2>/dev/null && { ready=1; break; }; sleep 1; done
if [ -z "$ready" ]; then
    echo "nginx-upstreams: generate or train has no address yet; answering 502 until it has" >&2
    printf 'upstream generate { server 127.0.0.1:9; }\nupstream train { server 127.0.0.1:9; }\n' \
        > "$conf"
fi

# A name that has no address at all (every replica down) keeps its last addresses: connecting
# fails fast there (502), and the group comes back with the first replica.
(
    while sleep 2; do
        render > "$conf.new" 2>/dev/null || continue
        if ! cmp -s "$conf.new" "$conf"; then
            mv "$conf.new" "$conf"
            echo "nginx-upstreams: addresses changed, reloading: $(grep -c server "$conf") servers" >&2
            nginx -s reload
        fi
    done
) &
exec nginx -g 'daemon off;'
