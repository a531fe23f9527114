#!/usr/bin/env bash
# Janus for the side-by-side load benchmark (issue 5): installs Debian's janus if it
# is missing, writes a minimal configuration (HTTP API and VideoRoom only) to a folder
# of its own, and makes the benchmark's network namespace. Janus gathers no loopback
# ICE candidates, so both servers run inside that namespace behind a veth pair with
# test-host addresses from 198.18.0.0/15; the load generator stays outside.
#
#   benches/janus.sh setup [CONF_DIR]   install, configure, make the namespace (idempotent)
#   benches/janus.sh teardown           remove the namespace
#
# Needs root (apt-get, ip netns). Used by `cargo bench -p classroom-relay --bench load -- --janus`.
set -euo pipefail

NS=crbench
HOST_IF=crbench-h
NS_IF=crbench-n
HOST_IP=198.18.77.1
NS_IP=198.18.77.2
HTTP_PORT=18088

case "${1:-}" in
setup)
    conf="${2:-/tmp/classroom-relay-janus}"
    if ! command -v janus >/dev/null; then
        echo "janus.sh: installing Debian's janus" >&2
        install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends janus >&2; }
        # Package lists may be missing or stale on a fresh machine.
        install || { apt-get update -qq >&2 && install; }
    fi
    lib=$(dirname "$(find /usr/lib -path '*janus/plugins/libjanus_videoroom.so' | head -1)")
    lib=$(dirname "$lib")
    mkdir -p "$conf"
    cat >"$conf/janus.jcfg" <<EOF
general: {
    configs_folder = "$conf"
    plugins_folder = "$lib/plugins"
    transports_folder = "$lib/transports"
    events_folder = "$lib/events"
    loggers_folder = "$lib/loggers"
    debug_level = 3
    # The benchmark's sessions live as long as a step; no keep-alive traffic.
    session_timeout = 0
    server_name = "classroom-relay-bench"
}
media: {
    rtp_port_range = "30000-39999"
}
nat: {
    nice_debug = false
    ice_enforce_list = "$NS_IF"
}
plugins: {
    disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so"
}
transports: {
    disable = "libjanus_websockets.so,libjanus_pfunix.so,libjanus_mqtt.so,libjanus_rabbitmq.so,libjanus_nanomsg.so"
}
events: {
    broadcast = false
}
loggers: {
    disable = "libjanus_jsonlog.so"
}
EOF
    cat >"$conf/janus.transport.http.jcfg" <<EOF
general: {
    json = "compact"
    base_path = "/janus"
    http = true
    port = $HTTP_PORT
    ip = "$NS_IP"
    https = false
}
admin: {
    admin_http = false
    admin_https = false
}
EOF
    cat >"$conf/janus.plugin.videoroom.jcfg" <<EOF
general: {
}
EOF
    if ! ip netns list | grep -qw "$NS"; then
        ip netns add "$NS"
        ip link add "$HOST_IF" type veth peer name "$NS_IF"
        ip link set "$NS_IF" netns "$NS"
        ip addr add "$HOST_IP/30" dev "$HOST_IF"
        ip link set "$HOST_IF" up
        ip netns exec "$NS" ip addr add "$NS_IP/30" dev "$NS_IF"
        ip netns exec "$NS" ip link set "$NS_IF" up
        ip netns exec "$NS" ip link set lo up
    fi
    echo "ns=$NS host_ip=$HOST_IP ns_ip=$NS_IP janus_http=http://$NS_IP:$HTTP_PORT/janus conf=$conf"
    ;;
teardown)
    ip netns del "$NS" 2>/dev/null || true
    ip link del "$HOST_IF" 2>/dev/null || true
    ;;
*)
    echo "usage: $0 setup [CONF_DIR] | teardown" >&2
    exit 2
    ;;
esac
