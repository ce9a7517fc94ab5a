#!/usr/bin/env bash
# Runs every test of doorsim on a fresh Debian machine with Rust: installs what the tests need
# (as root, via apt-get and pip, only when missing: curl, python3 with venv and requests, ffmpeg
# for ffprobe, sip-tester for sipp, kamailio, baresip-core, iproute2, prometheus for promtool, tshark, chromium and chromium-driver for the web page test, docker-compose to check the compose file), checks formatting and lints, then runs the unit, black-box, interop (Home
# Assistant axis library from PyPI, ffprobe, sipp, kamailio, baresip in a network namespace) and corpus tests. The corpus tests need
# ../shared/corpus beside the checkout and say so when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3 python3-venv)
command -v ffprobe >/dev/null || missing+=(ffmpeg)
command -v sipp >/dev/null || missing+=(sip-tester)
command -v kamailio >/dev/null || missing+=(kamailio)
command -v baresip >/dev/null || missing+=(baresip-core)
command -v ip >/dev/null || missing+=(iproute2)
command -v promtool >/dev/null || missing+=(prometheus)
command -v tshark >/dev/null || missing+=(tshark)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# A venv for the Home Assistant axis library test (made by the test under target/).
if ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi
# Python's requests (an HTTP Digest client the tests use) for whichever python3 is first on PATH.
if ! python3 -c 'import requests' 2>/dev/null; then
    echo "== installing: requests"
    python3 -m pip install -q requests 2>/dev/null || {
        # Debian's own python3 refuses pip installs: take Debian's package.
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-requests
    }
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --quiet --all-targets -- -D warnings
echo "== cargo test"
cargo test
echo "== fuzz targets, a few seconds each (they keep building; scripts/fuzz.sh runs them long)"
scripts/fuzz.sh 5
