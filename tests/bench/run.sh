#!/usr/bin/env bash
# Measures iorelay next to Node socket.io 4 (tests/bench/node-reference.mjs) and the raw
# WebSocket reference (bench/src/bin/raw-ws-reference.rs), which serve the same event contract,
# in one run: the servers take turns, each pinned to CPU 0, with the load generator (bench/src/)
# on CPU 1. Traffic stays on loopback.
#
#   bash tests/bench/run.sh --quick   # under a minute once built; CI's smoke test
#   bash tests/bench/run.sh --full    # about 10 minutes; the tables of docs/performance.md
#
# iorelay runs with --max-events-per-second 1000000, so that the run measures the server, not
# its per-socket rate limiter; the run's header prints its whole command line.
#
# Prints each measurement's table, then the comparison with ratios, the targets and the losses.
# Whatever the numbers (machines are noisy), exits 0 when every scenario ran and iorelay lost
# nothing; 3 when iorelay lost messages, left acks unanswered or answered them with an error,
# or lost connections (said in red on a terminal, unless NO_COLOR is set); 1 when a
# measurement could not run. The references' losses are listed but fail nothing: Node cannot
# keep up with the fixed-rate fan-out.
#
# Environment: BENCH_OUT (results directory; default a new one under /tmp), BENCH_PORT (first
# of three ports; default 39101), BENCH_SERVERS (default "iorelay node raw"),
# BENCH_IORELAY_ARGS (more iorelay options; one given here replaces the default of the same
# name), BENCH_SCENARIOS (scenarios separated by ";", run once instead of the mode's, e.g.
# "echo --clients 10 --duration-s 1").
set -euo pipefail

usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

mode=quick
case "${1:---quick}" in
  --quick) mode=quick ;;
  --full) mode=full ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out="${BENCH_OUT:-$(mktemp -d /tmp/iorelay-bench.XXXXXX)}"
mkdir -p "$out"
results="$out/results.jsonl"
: >"$results"
base_port="${BENCH_PORT:-39101}"
read -r -a servers <<<"${BENCH_SERVERS:-iorelay node raw}"
release="${CARGO_TARGET_DIR:-$root/target}/release"
bench="$release/iorelay-bench"

step() { printf '\n==> %s\n' "$*"; }
# red TEXT: TEXT in red when stderr is a terminal and NO_COLOR is unset.
red() {
  if [[ -t 2 && -z "${NO_COLOR:-}" ]]; then
    printf '\033[31m%s\033[0m\n' "$*"
  else
    printf '%s\n' "$*"
  fi
}

# iorelay's options: the defaults below, except those BENCH_IORELAY_ARGS gives itself (clap
# refuses an option given twice), then BENCH_IORELAY_ARGS.
read -r -a iorelay_extra <<<"${BENCH_IORELAY_ARGS:-}"
iorelay_defaults=(--tick-interval-ms 0 --max-events-per-second 1000000)
iorelay_args=()
for ((i = 0; i < ${#iorelay_defaults[@]}; i += 2)); do
  option=${iorelay_defaults[i]}
  if [[ " ${iorelay_extra[*]} " != *" $option "* && " ${iorelay_extra[*]} " != *" $option="* ]]; then
    iorelay_args+=("$option" "${iorelay_defaults[i + 1]}")
  fi
done
iorelay_args+=("${iorelay_extra[@]}")

if [[ "$(nproc)" -ge 2 ]] && command -v taskset >/dev/null 2>&1; then
  server_cpu=(taskset -c 0)
  load_cpu=(taskset -c 1)
else
  echo "warning: fewer than 2 CPUs or no taskset: running unpinned" >&2
  server_cpu=()
  load_cpu=()
fi
# Servers and load generator inherit the highest open-file limit allowed.
ulimit -n "$(ulimit -Hn)"

step "building iorelay, the load generator and the raw reference (release)"
cargo build --release --locked -p iorelay -p iorelay-bench --bin iorelay --bin iorelay-bench --bin raw-ws-reference
if [[ " ${servers[*]} " == *" node "* && ! -d tests/node_modules/socket.io ]]; then
  step "installing socket.io for the Node reference"
  npm ci --prefix tests --no-audit --no-fund --loglevel=error
fi

started=$SECONDS
server_pid=""
failed=()
lost=()

stop_server() {
  [[ -n "$server_pid" ]] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap stop_server EXIT

# start_server NAME PORT: starts a fresh server pinned to the server CPU; sets server_pid.
start_server() {
  local name=$1 port=$2 log="$out/$1.log"
  case "$name" in
    iorelay)
      # The shipped configuration (full event contract, logs at info) without the ticker and
      # with a rate limit no client of the benchmark reaches.
      NO_COLOR=1 "${server_cpu[@]}" "$release/iorelay" --host 127.0.0.1 \
        --port "$port" "${iorelay_args[@]}" >>"$log" 2>&1 &
      ;;
    node)
      "${server_cpu[@]}" node "$root/tests/bench/node-reference.mjs" --host 127.0.0.1 \
        --port "$port" >>"$log" 2>&1 &
      ;;
    raw)
      "${server_cpu[@]}" "$release/raw-ws-reference" --host 127.0.0.1 \
        --port "$port" >>"$log" 2>&1 &
      ;;
    *)
      echo "unknown server $name" >&2
      return 1
      ;;
  esac
  server_pid=$!
  if ! timeout 30 "${load_cpu[@]}" "$bench" wait --target "127.0.0.1:$port" --timeout-s 20; then
    echo "error: $name did not start; its log: $log" >&2
    tail -n 20 "$log" >&2 || true
    stop_server
    return 1
  fi
}

# measure NAME SCENARIO ARGS...: one scenario against a fresh server.
measure() {
  local name=$1 scenario=$2
  shift 2
  local port=$base_port
  case "$name" in node) port=$((base_port + 1)) ;; raw) port=$((base_port + 2)) ;; esac
  printf '\n--> %s %s %s\n' "$name" "$scenario" "$*"
  if ! start_server "$name" "$port"; then
    failed+=("$name $scenario $*")
    return 0
  fi
  local status=0
  timeout "$case_timeout" "${load_cpu[@]}" "$bench" "$scenario" --label "$name" \
    --target "127.0.0.1:$port" --server-pid "$server_pid" "$@" >>"$results" || status=$?
  case $status in
    0) ;;
    3) lost+=("$name $scenario $*") ;; # ran, and printed what it lost
    *) failed+=("$name $scenario $*") ;;
  esac
  stop_server
}

# Each round lets every server take its turn at every scenario, the order rotating between
# rounds so no server always runs first or last.
run_rounds() {
  local rounds=$1
  shift
  local scenario_args
  for round in $(seq "$rounds"); do
    local order=("${servers[@]:$(((round - 1) % ${#servers[@]}))}" "${servers[@]:0:$(((round - 1) % ${#servers[@]}))}")
    for scenario_args in "$@"; do
      for name in "${order[@]}"; do
        # shellcheck disable=SC2086 # each scenario is a word list on purpose
        measure "$name" $scenario_args
      done
    done
  done
}

printf '\nmode: %s; servers: %s\n' "$mode" "${servers[*]}"
printf 'iorelay: %s --host 127.0.0.1 --port PORT %s\n' "$release/iorelay" "${iorelay_args[*]}"
printf 'results: %s\n' "$out"

if [[ -n "${BENCH_SCENARIOS:-}" ]]; then
  case_timeout=120
  IFS=';' read -r -a chosen <<<"$BENCH_SCENARIOS"
  step "the scenarios of BENCH_SCENARIOS, one round"
  run_rounds 1 "${chosen[@]}"
elif [[ $mode == quick ]]; then
  case_timeout=60
  step "quick mode: one round, small sizes"
  run_rounds 1 \
    "connect --clients 2000 --procs 2 --hold-s 1 --settle-ms 500" \
    "fanout --members 1000 --window 64 --duration-s 2 --drain-s 5" \
    "fanout --members 1000 --rate 1000 --duration-s 2 --drain-s 5" \
    "echo --clients 100 --duration-s 2"
else
  case_timeout=300
  step "full mode: three rounds"
  run_rounds 3 \
    "connect --clients 10000 --hold-s 3 --settle-ms 2000" \
    "fanout --members 1000 --window 64 --duration-s 10 --drain-s 10" \
    "fanout --members 1000 --rate 1000 --duration-s 10 --drain-s 10" \
    "echo --clients 100 --duration-s 10"
  if [[ " ${servers[*]} " == *" iorelay "* ]]; then
    step "iorelay holding 19 000 clients for 60 s"
    case_timeout=240
    measure iorelay connect --clients 19000 --procs 2 --hold-s 60 --settle-ms 5000
  fi
fi

step "results ($out), $((SECONDS - started)) s of measurement"
if [[ -s "$results" ]]; then
  "$bench" report "$results"
  "$bench" report --markdown "$results" >"$out/report.md"
  echo "Markdown: $out/report.md"
fi

# The server under test must lose nothing; the references' losses are part of the comparison.
subject_lost=()
for measurement in "${lost[@]}"; do
  if [[ $measurement == "iorelay "* ]]; then
    subject_lost+=("$measurement")
  else
    echo "note: a reference lost messages or connections (see above): $measurement"
  fi
done
if ((${#failed[@]})); then
  red "error: these measurements could not run:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
if ((${#subject_lost[@]})); then
  red "error: iorelay lost messages, acks or connections in these measurements (\"LOST\" above):" >&2
  for measurement in "${subject_lost[@]}"; do red "  $measurement" >&2; done
  exit 3
fi
