#!/usr/bin/env bash
# Runs every benchmark of doorsim, one after the other; each prints its figures and their ratios
# to a baseline measured in the same run. Needs what scripts/test.sh installs (kamailio for the
# fleet's registration part).
set -euo pipefail
cd "$(dirname "$0")/.."
for bench in formats dtmf http sip rtp fleet; do
    echo "== cargo bench --bench $bench"
    cargo bench --quiet --bench "$bench"
done
