#!/usr/bin/env bash
# Multi-host demo on one machine: the DSO and the prosumers in separate network namespaces.
#
#   scripts/netns_demo.sh OUT_DIR [more p2pvar deploy flags, e.g. --days 1 --protocol bilateral]
#
# Three "hosts" (network namespaces p2pv-h0, p2pv-h1, p2pv-h2 with addresses 10.233.0.1-3 on
# a bridge) run the DSO with its relay (h0), prosumers p01-p16 (h1) and every other prosumer
# (h2); agents talk tcp with CURVE keys, exactly as on separate machines. Needs root
# (CAP_SYS_ADMIN and CAP_NET_ADMIN). Everything happens inside a private mount and network
# namespace made by unshare: no interface, address or route outside it is touched, and the
# namespaces, bridge and addresses vanish when the script ends. The only addresses used are
# those of the namespaces made here.
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 OUT_DIR [p2pvar deploy flags]" >&2
    exit 2
fi
if [ "${P2PVAR_NETNS_INNER:-}" != 1 ]; then
    exec unshare --mount --net --propagation private env P2PVAR_NETNS_INNER=1 "$0" "$@"
fi

OUT=$(realpath -m "$1")
shift
PYTHON=${PYTHON:-python}
SUBNET=10.233.0
UP_PORT=47001
DOWN_PORT=47002
WORK=$(mktemp -d /tmp/p2pvar-netns-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# Private /run/netns for `ip netns` (this mount namespace only).
mkdir -p /run/netns
mount -t tmpfs p2pvar-netns /run/netns
ip link set lo up
ip link add p2pv-br type bridge
ip link set p2pv-br up
for i in 0 1 2; do
    ns=p2pv-h$i
    ip netns add "$ns"
    ip link add "p2pv-v$i" type veth peer name eth0 netns "$ns"
    ip link set "p2pv-v$i" master p2pv-br up
    ip -n "$ns" addr add "$SUBNET.$((i + 1))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
done

AGENTS_H1=$(printf '"p%02d",' $(seq 1 16))
cat >"$WORK/hosts.json" <<EOF
{
  "dso_host": "h0",
  "upstream_port": $UP_PORT,
  "downstream_port": $DOWN_PORT,
  "hosts": {
    "h0": {"address": "$SUBNET.1", "launch": ["ip", "netns", "exec", "p2pv-h0"]},
    "h1": {"address": "$SUBNET.2", "agents": [${AGENTS_H1%,}],
           "launch": ["ip", "netns", "exec", "p2pv-h1"]},
    "h2": {"address": "$SUBNET.3", "agents": "*", "launch": ["ip", "netns", "exec", "p2pv-h2"]}
  }
}
EOF

echo "namespaces: $(ip netns list | tr '\n' ' ')"
if command -v ping >/dev/null; then
    ip netns exec p2pv-h1 ping -c 1 -W 2 "$SUBNET.1" >/dev/null && echo "h1 reaches h0 ($SUBNET.1)"
fi
"$PYTHON" -m abm.cli.main deploy --transport tcp --hosts "$WORK/hosts.json" --keys "$WORK/keys" \
    --out "$OUT" "$@"
