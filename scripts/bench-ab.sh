#!/usr/bin/env bash
# Compares two builds of doorsim under the same HTTP load, for performance work:
#
#   scripts/bench-ab.sh A B [rounds]
#
# A and B are git revisions (built here, in release mode) or paths to doorsim binaries. Both run
# at once; `wrk -t2 -c64` posts GetSIPConfiguration with Basic auth to each in turn, 2 s a run,
# for `rounds` rounds (default 12), so the machine's noise falls on both alike. It prints, per
# build, the median rate and the server's CPU a request (user and system, from /proc), and the
# median of B's rate over A's per round. On a noisy 2-core machine single runs move by 10-20 %:
# trust a difference only when it holds across rounds.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 A B [rounds]  (git revisions or doorsim binaries)" >&2; exit 2; }
# Paths as the caller wrote them, before the script moves to the project.
a=$1 b=$2
[ -f "$a" ] && a=$(realpath "$a")
[ -f "$b" ] && b=$(realpath "$b")
cd "$(dirname "$0")/.."
repo=$PWD
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
rounds=${3:-12}
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    git worktree remove --force "$work/tree" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The doorsim binary of $1 (a path as it is; a revision built in a worktree) copied to $2.
binary() {
    if [ -x "$1" ] && [ -f "$1" ]; then
        cp "$1" "$2"
        return
    fi
    # The project's target directory: only doorsim itself is rebuilt.
    git worktree add -q --detach "$work/tree" "$1"
    (cd "$work/tree" && CARGO_TARGET_DIR="$repo/target" cargo build --quiet --release --bin doorsim)
    cp "$repo/target/release/doorsim" "$2"
    git worktree remove --force "$work/tree"
}
binary "$a" "$work/a"
binary "$b" "$work/b"

cat >"$work/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"axcall:GetSIPConfiguration":{}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic cm9vdDpwYXNz"
EOF

# Starts build $1 on a free port; prints "PID PORT".
start() {
    local port rtsp
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    rtsp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$1" --http "127.0.0.1:$port" --rtsp "127.0.0.1:$rtsp" --log error >/dev/null 2>&1 &
    echo "$! $port"
}
read -r pid_a port_a < <(start "$work/a")
pids+=("$pid_a")
read -r pid_b port_b < <(start "$work/b")
pids+=("$pid_b")
for port in "$port_a" "$port_b"; do
    until curl -s -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.1; done
done

# One run against $1 (pid) on $2 (port): "requests user_ticks system_ticks".
run() {
    local u0 s0 u1 s1 n
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$1/stat")
    n=$(wrk -t2 -c64 -d2 -s "$work/post.lua" "http://127.0.0.1:$2/vapix/call" | awk '/requests in/ {print $1}')
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$1/stat")
    echo "$n $((u1 - u0)) $((s1 - s0))"
}
for _ in $(seq "$rounds"); do
    echo "$(run "$pid_a" "$port_a") $(run "$pid_b" "$port_b")"
done >"$work/rounds"

python3 - "$work/rounds" "$(getconf CLK_TCK)" "$1" "$2" <<'EOF'
import statistics, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1])]
tick_us = 1e6 / float(sys.argv[2])
for name, label, i in (("A", sys.argv[3], 0), ("B", sys.argv[4], 3)):
    rate = statistics.median(r[i] / 2 for r in rows)
    user = statistics.median(r[i + 1] * tick_us / r[i] for r in rows)
    system = statistics.median(r[i + 2] * tick_us / r[i] for r in rows)
    print(f"{name} {label}: {rate:9.0f} req/s, server CPU a request: user {user:5.2f} µs, system {system:5.2f} µs")
ratios = sorted(r[3] / r[0] for r in rows)
print(f"B/A rate, median of {len(rows)} rounds: {statistics.median(ratios):.3f} (rounds {ratios[0]:.2f}-{ratios[-1]:.2f})")
EOF
