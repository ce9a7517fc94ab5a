#!/usr/bin/env bash
# Runs every benchmark of doorsim, one after the other; each prints its figures and their ratios
# to a baseline measured in the same run. Needs what scripts/test.sh installs (sipp for the SIP
# benchmark, kamailio for the fleet's registration part) and installs wrk, which the HTTP
# benchmark runs beside its own client, when it is missing. The machine should be otherwise idle.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk || true
fi
for bench in formats dtmf http sip rtp fleet; do
    echo "== cargo bench --bench $bench"
    cargo bench --quiet --bench "$bench"
done
