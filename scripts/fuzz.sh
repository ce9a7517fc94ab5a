#!/usr/bin/env bash
# Usage: scripts/fuzz.sh [SECONDS [TARGET...]]
# Runs every fuzz target (fuzz/fuzz_targets/), or the TARGETs named, for SECONDS each (default
# 600, ten minutes), with
# seed corpora from the project's fixtures and, when it is beside the checkout,
# ../shared/corpus. Needs the nightly toolchain and cargo-fuzz (installed here when missing).
# Findings land in fuzz/artifacts/<target>/; a crash makes this script fail.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "== fuzz: no nightly toolchain here, skipping (cargo fuzz needs it)"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install --quiet --locked cargo-fuzz
fi
corpus=fuzz/corpus
mkdir -p "$corpus"
seed() { # seed TARGET FILES...
    local dir="$corpus/$1"; shift
    mkdir -p "$dir"
    for f in "$@"; do [ -f "$f" ] && cp -n "$f" "$dir/" 2>/dev/null || true; done
}
shared=../shared/corpus
seed sip_message "$shared"/rfc4475-torture/*.dat
seed json_command fixtures/vapix/*.json
seed state_file fixtures/vapix/*.json
seed brand_faces fixtures/brands/*.json
mkdir -p fuzz/logs
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
for target in "${targets[@]}"; do
    echo "== fuzz $target for ${seconds}s"
    mkdir -p "$corpus/$target"
    log="fuzz/logs/$target.log"
    if ! cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "== fuzz $target failed (findings, if any, in fuzz/artifacts/$target)"
        exit 1
    fi
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|cov: " "$log" | tail -n 3
done
