#!/usr/bin/env bash
# compare-etcd.sh — raftkv vs etcd 3.4, side by side on this machine, with the same load tool.
#
# Starts a 3-member etcd 3.4 cluster (Debian's etcd-server; fsync on, as etcd always does)
# and a 3-member raftkv cluster (`raftkv dev`; fsync on, as raftkv always does), both on
# loopback and on the same disk, then runs the same matrix of `raftkv bench` cells against
# each, alternating A/B per cell, for --rounds rounds, and prints a ratio table (medians of
# the per-round raftkv/etcd ratios). Raw JSON of every run goes to the results directory.
#
# Both clusters stay up for the whole run and are measured alternately: only one is ever
# under load; the idle one only exchanges heartbeats (a few messages per 100 ms, far below
# 1% of a core). Before every run its own members' CPU time is read from /proc, so the
# results also say how much CPU each system's servers and the load tool spent per cell.
#
# Usage:
#   bench/compare-etcd.sh                 # 7 cells x 2 systems x 3 rounds, 10 s per run
#   bench/compare-etcd.sh --quick         # 3 s per run
#   bench/compare-etcd.sh --rounds 5 --duration 20s --results /tmp/cmp
#   bench/compare-etcd.sh --cells put-c1,put-c16 --rounds 1
#   bench/compare-etcd.sh --summarize target/compare-etcd/20260101-120000   # table only
#
# Options:
#   --rounds R        rounds of the whole matrix (default 3)
#   --duration D      measured time per run (default 10s; --quick: 3s)
#   --warmup W        unmeasured load before each run (default 1s)
#   --quick           3 s runs
#   --cells LIST      comma-separated subset of the matrix (names below)
#   --results DIR     where the JSON goes (default target/compare-etcd/<timestamp>)
#   --skip-build      use target/release/raftkv as it is
#   --raftkv PATH     use this raftkv binary (no build), e.g. one built from a clean checkout
#   --keep-data       keep the clusters' data directories (printed at the end)
#   --no-perf         do not count the servers' fsync/fdatasync calls and syscalls with
#                     `perf stat` (on by default when perf and its syscall tracepoints work)
#   --summarize DIR   print the table of an earlier run and exit
#
# Matrix (256 B values, 10,000 keys, prefilled once per cluster before the first run):
#   put-c1 put-c16 put-c64 put-c256     Put at 1, 16, 64, 256 clients
#   get-c64                             linearizable Range at 64 clients
#   sget-c64                            serializable Range at 64 clients
#   mixed-c64                           90% linearizable Range / 10% Put at 64 clients
#
# Ports (refused if any is busy): etcd 12379/12380, 12479/12480, 12579/12580;
# raftkv 2279/2280/2281, 22279-22281, 32279-32281 (raftkv dev --base-port 2279; +2 is the
# admin endpoint).
# Both systems run with heartbeat 100 ms and election timeout 1000 ms (etcd's defaults);
# everything else is each system's default. `--leader-first` puts each cluster's leader first
# in the endpoint list, so the 1-client cell talks to the leader on both systems.
#
# Every process this script starts is stopped on exit (trap EXIT, also on Ctrl-C).

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RAFTKV="$REPO/target/release/raftkv"
SUMMARY="$REPO/bench/compare-summary.py"

ROUNDS=3
DURATION=10s
WARMUP=1s
CELLS_WANTED=""
RESULTS=""
SKIP_BUILD=0
KEEP_DATA=0
PERF=1
PERF_EVENTS="syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync,raw_syscalls:sys_enter,context-switches"

ETCD_PORTS=(12379 12479 12579)
# Below the kernel's ephemeral range (32768+), so no client socket can hold one.
RAFTKV_BASE=2279
RAFTKV_PORTS=(2279 22279 32279)
HEARTBEAT_MS=100
ELECTION_MS=1000

ALL_CELLS=(put-c1 put-c16 put-c64 put-c256 get-c64 sget-c64 mixed-c64)
declare -A CELL_ARGS=(
  [put-c1]="--op put --clients 1"
  [put-c16]="--op put --clients 16"
  [put-c64]="--op put --clients 64"
  [put-c256]="--op put --clients 256"
  [get-c64]="--op get --clients 64"
  [sget-c64]="--op get-serializable --clients 64"
  [mixed-c64]="--op mixed --read-ratio 0.9 --clients 64"
)
COMMON_ARGS=(--value-size 256 --key-space 10000 --leader-first --json --quiet)

die() { echo "compare-etcd: $*" >&2; exit 1; }
log() { echo "compare-etcd: $*" >&2; }

usage() { sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT_UPDATED=0
need_pkg() {
  if [ "$APT_UPDATED" -eq 0 ]; then
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  log "installing $*"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

summarize() {
  command -v python3 >/dev/null || need_pkg python3
  python3 "$SUMMARY" "$1"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --quick) DURATION=3s; shift ;;
    --cells) CELLS_WANTED="$2"; shift 2 ;;
    --results) RESULTS="$2"; shift 2 ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    --raftkv) RAFTKV="$(realpath "$2")"; SKIP_BUILD=1; shift 2 ;;
    --keep-data) KEEP_DATA=1; shift ;;
    --no-perf) PERF=0; shift ;;
    --summarize) summarize "$2"; exit 0 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"

CELLS=()
if [ -n "$CELLS_WANTED" ]; then
  IFS=, read -r -a CELLS <<<"$CELLS_WANTED"
  for c in "${CELLS[@]}"; do
    [ -n "${CELL_ARGS[$c]+x}" ] || die "unknown cell $c (cells: ${ALL_CELLS[*]})"
  done
else
  CELLS=("${ALL_CELLS[@]}")
fi

# --- packages -------------------------------------------------------------------------------

command -v etcd >/dev/null || need_pkg etcd-server
command -v etcdctl >/dev/null || need_pkg etcd-client
command -v python3 >/dev/null || need_pkg python3
etcd_version="$(etcd --version | sed -n 's/^etcd Version: //p')"
case "$etcd_version" in
  3.4.*) ;;
  *) log "warning: etcd $etcd_version is not 3.4 (the reference is Debian's etcd-server 3.4)" ;;
esac
# etcd 3.4 runs without this only on amd64 and ppc64le.
case "$(uname -m)" in
  x86_64|ppc64le) ;;
  aarch64) export ETCD_UNSUPPORTED_ARCH=arm64 ;;
  *) export ETCD_UNSUPPORTED_ARCH="$(uname -m)" ;;
esac

if [ "$PERF" -eq 1 ] && ! perf stat -e "$PERF_EVENTS" true >/dev/null 2>&1; then
  log "perf stat cannot count syscall tracepoints here; running without fsync counts"
  PERF=0
fi

# --- ports ----------------------------------------------------------------------------------

port_busy() {
  if command -v ss >/dev/null; then
    [ -n "$(ss -Hltn "( sport = :$1 )" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
# Client and peer port of every member; raftkv dev members also serve admin on client + 2.
for p in "${ETCD_PORTS[@]}" "${RAFTKV_PORTS[@]}"; do
  for q in "$p" "$((p + 1))" "$((p + 2))"; do
    if port_busy "$q"; then
      die "port $q is busy (another etcd, raftkv or an earlier run of this script?); stop it first"
    fi
  done
done

# --- build ----------------------------------------------------------------------------------

if [ "$SKIP_BUILD" -eq 0 ]; then
  log "building raftkv (release)"
  (cd "$REPO" && cargo build --release -p cli --quiet)
fi
[ -x "$RAFTKV" ] || die "$RAFTKV is missing (drop --skip-build)"

# --- processes and cleanup ------------------------------------------------------------------

WORK="$(mktemp -d "${TMPDIR:-/tmp}/compare-etcd.XXXXXX")"
ETCD_PIDS=()
RAFTKV_DEV_PID=""
RAFTKV_PIDS=()
PERF_PID=""

stop_pid() { # pid signal
  kill "-$2" "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.05
  done
  kill -KILL "$1" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$PERF_PID" ]; then stop_pid "$PERF_PID" INT; fi
  if [ -n "$RAFTKV_DEV_PID" ]; then stop_pid "$RAFTKV_DEV_PID" INT; fi
  for pid in "${RAFTKV_PIDS[@]}"; do stop_pid "$pid" TERM; done
  for pid in "${ETCD_PIDS[@]}"; do stop_pid "$pid" TERM; done
  wait 2>/dev/null || true
  if [ "$KEEP_DATA" -eq 1 ]; then
    log "data and logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_etcd() {
  local cluster="" i
  for i in 0 1 2; do
    cluster+="${cluster:+,}e$((i + 1))=http://127.0.0.1:$((ETCD_PORTS[i] + 1))"
  done
  mkdir -p "$WORK/etcd"
  for i in 0 1 2; do
    local name="e$((i + 1))" c="${ETCD_PORTS[i]}"
    etcd --name "$name" --data-dir "$WORK/etcd/$name" \
      --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
      --listen-peer-urls "http://127.0.0.1:$((c + 1))" \
      --initial-advertise-peer-urls "http://127.0.0.1:$((c + 1))" \
      --initial-cluster "$cluster" --initial-cluster-token compare-etcd \
      --initial-cluster-state new \
      --heartbeat-interval "$HEARTBEAT_MS" --election-timeout "$ELECTION_MS" \
      --logger zap --log-outputs stderr \
      </dev/null >"$WORK/etcd/$name.log" 2>&1 &
    ETCD_PIDS+=("$!")
  done
  ETCD_ENDPOINTS="127.0.0.1:${ETCD_PORTS[0]},127.0.0.1:${ETCD_PORTS[1]},127.0.0.1:${ETCD_PORTS[2]}"
  for _ in $(seq 300); do
    if ETCDCTL_API=3 etcdctl --endpoints="$ETCD_ENDPOINTS" --command-timeout=2s \
      endpoint health >/dev/null 2>&1; then
      log "etcd $etcd_version up: $ETCD_ENDPOINTS (pids ${ETCD_PIDS[*]})"
      return
    fi
    sleep 0.1
  done
  die "etcd did not become healthy in 30 s; see $WORK/etcd/*.log (use --keep-data)"
}

start_raftkv() {
  "$RAFTKV" dev --fresh --dir "$WORK/raftkv" --base-port "$RAFTKV_BASE" \
    --heartbeat-interval "$HEARTBEAT_MS" --election-timeout "$ELECTION_MS" \
    </dev/null >"$WORK/raftkv-dev.out" 2>&1 &
  RAFTKV_DEV_PID=$!
  for _ in $(seq 600); do
    if grep -q '^cluster ready' "$WORK/raftkv-dev.out" 2>/dev/null; then
      mapfile -t RAFTKV_PIDS < <(awk '$2 == "client" && $8 == "pid" { print $9 }' "$WORK/raftkv-dev.out")
      RAFTKV_ENDPOINTS="127.0.0.1:${RAFTKV_PORTS[0]},127.0.0.1:${RAFTKV_PORTS[1]},127.0.0.1:${RAFTKV_PORTS[2]}"
      log "raftkv up: $RAFTKV_ENDPOINTS (pids ${RAFTKV_PIDS[*]})"
      return
    fi
    kill -0 "$RAFTKV_DEV_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK/raftkv-dev.out" >&2
  die "raftkv dev did not report a ready cluster; see $WORK/raftkv/*.log (use --keep-data)"
}

# CPU seconds (user + system) spent so far by the given pids.
cpu_seconds() {
  local tck total=0 pid t
  tck="$(getconf CLK_TCK)"
  for pid in "$@"; do
    # Fields after the ")" of the command name: utime is the 12th, stime the 13th.
    t="$(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')"
    total=$((total + t))
  done
  awk -v t="$total" -v k="$tck" 'BEGIN { printf "%.2f", t / k }'
}

# run_cell system cell round: one bench run; JSON in $RESULTS, CPU figures beside it.
run_cell() {
  local sys="$1" cell="$2" round="$3" endpoints pids
  if [ "$sys" = etcd ]; then
    endpoints="$ETCD_ENDPOINTS"; pids=("${ETCD_PIDS[@]}")
  else
    endpoints="$RAFTKV_ENDPOINTS"; pids=("${RAFTKV_PIDS[@]}")
  fi
  local base="$RESULTS/$sys-$cell-r$round" before after load
  load="$(cut -d' ' -f1 /proc/loadavg)"
  before="$(cpu_seconds "${pids[@]}")"
  if [ "$PERF" -eq 1 ]; then
    perf stat -x, -e "$PERF_EVENTS" -o "$base.perf.csv" -p "$(IFS=,; echo "${pids[*]}")" \
      </dev/null >/dev/null 2>&1 &
    PERF_PID=$!
  fi
  local TIMEFORMAT='%R %U %S'
  # shellcheck disable=SC2086 # CELL_ARGS entries are word lists on purpose
  { time "$RAFTKV" bench --endpoints "$endpoints" ${CELL_ARGS[$cell]} --no-prefill \
      --duration "$DURATION" --warmup "$WARMUP" "${COMMON_ARGS[@]}" \
      >"$base.json" 2>"$base.err"; } 2>"$base.time" || {
    cat "$base.err" >&2
    die "bench $sys $cell round $round failed"
  }
  after="$(cpu_seconds "${pids[@]}")"
  if [ -n "$PERF_PID" ]; then
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=""
  fi
  read -r wall user sys_t <"$base.time"
  printf '{"system":"%s","cell":"%s","round":%s,"load1_before":%s,"server_cpu_s":%s,"bench_cpu_s":%s,"bench_wall_s":%s}\n' \
    "$sys" "$cell" "$round" "$load" \
    "$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", a - b }')" \
    "$(awk -v u="$user" -v s="$sys_t" 'BEGIN { printf "%.2f", u + s }')" "$wall" >"$base.cpu.json"
  python3 - "$base.json" "$sys" "$cell" "$round" <<'EOF' >&2
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency_us"]
print(f"  r{sys.argv[4]} {sys.argv[3]:<10} {sys.argv[2]:<7} {r['throughput_ops_s']:>9.0f} ops/s"
      f"  p50 {l['p50']/1000:7.2f} ms  p99 {l['p99']/1000:7.2f} ms  errors {r['errors']}")
EOF
}

# prefill system: write all 10,000 keys once so the read cells find them.
prefill() {
  local endpoints
  if [ "$1" = etcd ]; then endpoints="$ETCD_ENDPOINTS"; else endpoints="$RAFTKV_ENDPOINTS"; fi
  "$RAFTKV" bench --endpoints "$endpoints" --op put --prefill --total 1 --warmup 0s \
    --clients 64 "${COMMON_ARGS[@]}" >"$RESULTS/$1-prefill.json" \
    || die "prefill of $1 failed"
}

# --- run ------------------------------------------------------------------------------------

RESULTS="${RESULTS:-$REPO/target/compare-etcd/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$RESULTS"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "nproc: $(nproc)"
  echo "cpu: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
  echo "kernel: $(uname -r)"
  echo "etcd: $etcd_version"
  echo "raftkv: $RAFTKV (repo at $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$([ "$SKIP_BUILD" -eq 1 ] && echo ", not rebuilt"))"
  echo "rounds: $ROUNDS  duration: $DURATION  warmup: $WARMUP  cells: ${CELLS[*]}"
  echo "data dir: $WORK ($(df -h --output=source,fstype "$WORK" | tail -1))"
} >"$RESULTS/machine.txt"
cat "$RESULTS/machine.txt" >&2

start_etcd
start_raftkv
prefill etcd
prefill raftkv

for round in $(seq "$ROUNDS"); do
  log "round $round of $ROUNDS"
  i=0
  for cell in "${CELLS[@]}"; do
    # Alternate which system goes first, so a drift in the machine's load hits both alike.
    if [ $(((round + i) % 2)) -eq 1 ]; then order=(etcd raftkv); else order=(raftkv etcd); fi
    for sys in "${order[@]}"; do run_cell "$sys" "$cell" "$round"; done
    i=$((i + 1))
  done
done

python3 "$SUMMARY" "$RESULTS" | tee "$RESULTS/summary.md"
log "raw results in $RESULTS"
