#!/usr/bin/env bash
# Measures iorelay next to Node socket.io 4 (tests/bench/node-reference.mjs) and the raw
# WebSocket reference (bench/src/bin/raw-ws-reference.rs), which serve the same event contract,
# in one run: the servers take turns, each pinned to CPU 0, with the load generator (bench/src/)
# on CPU 1. Traffic stays on loopback.
#
#   bash tests/bench/run.sh --quick   # about a minute once built; CI's smoke test
#   bash tests/bench/run.sh --full    # about 13 minutes; the tables of docs/performance.md
#
# iorelay runs with --max-events-per-second 1000000, so that the run measures the server, not
# its per-socket rate limiter; the run's header prints its whole command line. Two scenarios
# add options of their own: `webhook` starts the app behind iorelay's event webhook
# (tests/bench/webhook-app.mjs, pinned to the load generator's CPU) and gives iorelay
# --webhook-url and --webhook-secret; `api-emit` gives it --api-key. Node serves both from its
# own process; the raw reference has neither webhooks nor an API and sits them out.
#
# Prints each measurement's table, then the comparison with ratios, the targets and the losses.
# Whatever the numbers (machines are noisy), exits 0 when every scenario ran and iorelay lost
# nothing; 3 when iorelay lost messages, left acks unanswered or answered them with an error,
# or lost connections (said in red on a terminal, unless NO_COLOR is set); 1 when a
# measurement could not run. The references' losses are listed but fail nothing: Node cannot
# keep up with the fixed-rate fan-out.
#
# Environment: BENCH_OUT (results directory; default a new one under /tmp), BENCH_PORT (first
# of four ports: iorelay, Node, raw, the webhook app; default 29101), BENCH_SERVERS (default
# "iorelay node raw"), BENCH_IORELAY_ARGS (more iorelay options; one given here replaces the
# default of the same name), BENCH_NODE_ARGS (options of tests/bench/node-reference.mjs, such
# as --connection-state-recovery), BENCH_SCENARIOS: either scenario names (connect fanout echo
# webhook api-emit), which keep the mode's sizes and rounds, e.g. "webhook api-emit"; or
# scenarios with their options, separated by ";" and run once, e.g.
# "echo --clients 10 --duration-s 1". BENCH_NODES=2 measures clusters instead: a redis-server
# (on the port after the webhook app's) and two nodes of each server on it (iorelay with
# --redis-url, Node with @socket.io/redis-streams-adapter, or @socket.io/redis-adapter when
# BENCH_NODE_ARGS has --redis-adapter pubsub), all pinned to the server CPU; only the fanout
# scenarios run, the publisher on the first node and the members spread over both. The raw
# reference has no cluster and sits it out. Cases whose clients stay on long-polling
# (`connect --transport polling`, `fanout --member-transport polling`) run against iorelay and
# Node; the raw reference serves WebSocket only and sits them out too.
set -euo pipefail

# The comment above, up to the first line that is not one.
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; }

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
# Below Linux's ephemeral ports (32768 and up): iorelay's connections to the webhook app leave
# 127.0.0.1:<ephemeral port> in TIME_WAIT for a minute when it stops, and one of them on the
# next server's port would keep that server from listening.
base_port="${BENCH_PORT:-29101}"
# The app behind iorelay's webhook listens on the port after the three servers'.
app_port=$((base_port + 3))
# Per run, so that nothing depends on a fixed value; they only ever travel on loopback.
webhook_secret="bench-secret-$RANDOM$RANDOM$RANDOM"
api_key="bench-key-$RANDOM$RANDOM$RANDOM"
nodes="${BENCH_NODES:-1}"
case "$nodes" in
  1) default_servers="iorelay node raw" ;;
  2) default_servers="iorelay node" ;;
  *) echo "BENCH_NODES must be 1 or 2" >&2; exit 2 ;;
esac
read -r -a servers <<<"${BENCH_SERVERS:-$default_servers}"
# The cluster's Redis, and the second node's port of each server (BENCH_NODES=2).
redis_port=$((base_port + 4))
second_port_offset=5
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
peer_pid=""
app_pid=""
redis_pid=""
failed=()
lost=()

# stop_pid PID: TERM, up to 5 s to exit, then KILL.
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_server() {
  if [[ -n "$server_pid" ]]; then
    stop_pid "$server_pid"
    server_pid=""
  fi
  if [[ -n "$peer_pid" ]]; then
    stop_pid "$peer_pid"
    peer_pid=""
  fi
  # The app goes after the server, which sends it the last disconnect webhooks.
  if [[ -n "$app_pid" ]]; then
    stop_pid "$app_pid"
    app_pid=""
  fi
}
stop_all() {
  stop_server
  if [[ -n "$redis_pid" ]]; then
    stop_pid "$redis_pid"
    redis_pid=""
  fi
}
trap stop_all EXIT

# start_redis: an empty redis-server without persistence, pinned to the server CPU.
start_redis() {
  "${server_cpu[@]}" redis-server --bind 127.0.0.1 --port "$redis_port" --save "" \
    --appendonly no >>"$out/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do
    if redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "error: redis-server did not start; its log: $out/redis.log" >&2
  return 1
}

# start_app: starts the webhook app pinned to the load CPU; sets app_pid.
start_app() {
  "${load_cpu[@]}" node "$root/tests/bench/webhook-app.mjs" --host 127.0.0.1 \
    --port "$app_port" --path /hook --secret "$webhook_secret" >>"$out/webhook-app.log" 2>&1 &
  app_pid=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$app_port") 2>/dev/null; then
      return 0
    fi
    kill -0 "$app_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "error: the webhook app did not start; its log: $out/webhook-app.log" >&2
  tail -n 20 "$out/webhook-app.log" >&2 || true
  stop_server
  return 1
}

# start_server NAME PORT [IORELAY_OPTION...]: starts a fresh server pinned to the server CPU;
# sets started_pid. The options are iorelay's for this scenario only. With BENCH_NODES=2 the
# server is a node of the cluster on the run's Redis.
start_server() {
  local name=$1 port=$2 log="$out/$1.log"
  shift 2
  local cluster=()
  if [[ $nodes == 2 ]]; then
    cluster=(--redis-url "redis://127.0.0.1:$redis_port")
  fi
  case "$name" in
    iorelay)
      # The shipped configuration (full event contract, logs at info) without the ticker and
      # with a rate limit no client of the benchmark reaches.
      NO_COLOR=1 "${server_cpu[@]}" "$release/iorelay" --host 127.0.0.1 \
        --port "$port" "${iorelay_args[@]}" "${cluster[@]}" "$@" >>"$log" 2>&1 &
      ;;
    node)
      # shellcheck disable=SC2086 # BENCH_NODE_ARGS is a word list on purpose
      "${server_cpu[@]}" node "$root/tests/bench/node-reference.mjs" --host 127.0.0.1 \
        --port "$port" ${BENCH_NODE_ARGS:-} "${cluster[@]}" >>"$log" 2>&1 &
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
  started_pid=$!
  if ! timeout 30 "${load_cpu[@]}" "$bench" wait --target "127.0.0.1:$port" --timeout-s 20; then
    echo "error: $name did not start; its log: $log" >&2
    tail -n 20 "$log" >&2 || true
    kill -KILL "$started_pid" 2>/dev/null || true
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
  # What this scenario adds to the server's options and to the load generator's.
  local server_extra=() bench_extra=()
  case "$name $scenario" in
    raw\ *) if [[ $nodes == 2 ]]; then
      printf '\n--> %s %s: n/a (the raw reference has no cluster)\n' "$name" "$scenario"
      return 0
    fi ;;&
    "raw webhook" | "raw api-emit")
      printf '\n--> %s %s: n/a (the raw reference has no webhooks and no API)\n' "$name" "$scenario"
      return 0
      ;;
    raw\ *) if [[ " $* " == *" --transport polling "* || " $* " == *" --member-transport polling "* ]]; then
      printf '\n--> %s %s %s: n/a (the raw reference serves WebSocket only)\n' "$name" "$scenario" "$*"
      return 0
    fi ;;
    "iorelay webhook")
      server_extra=(--webhook-url "http://127.0.0.1:$app_port/hook" --webhook-secret "$webhook_secret")
      ;;
    "iorelay api-emit")
      server_extra=(--api-key "$api_key")
      bench_extra=(--api-key "$api_key")
      ;;
  esac
  printf '\n--> %s %s %s\n' "$name" "$scenario" "$*"
  if [[ ${#server_extra[@]} -gt 0 ]]; then
    printf '    iorelay options for this scenario: %s\n' \
      "$(printf '%s\n' "${server_extra[@]}" | sed "s/$webhook_secret/<secret>/; s/$api_key/<key>/" | tr '\n' ' ')"
  fi
  if [[ "$name $scenario" == "iorelay webhook" ]]; then
    if ! start_app; then
      failed+=("$name $scenario $*")
      return 0
    fi
    bench_extra=(--app-pid "$app_pid")
  fi
  if [[ $nodes == 2 ]]; then
    # Each measurement starts from an empty Redis: no streams or sessions of the last one.
    redis-cli -p "$redis_port" flushall >/dev/null
  fi
  if ! start_server "$name" "$port" "${server_extra[@]}"; then
    failed+=("$name $scenario $*")
    return 0
  fi
  server_pid=$started_pid
  if [[ $nodes == 2 && $scenario == fanout ]]; then
    local second_port=$((port + second_port_offset))
    if ! start_server "$name" "$second_port" "${server_extra[@]}"; then
      failed+=("$name $scenario $*")
      stop_server
      return 0
    fi
    peer_pid=$started_pid
    bench_extra+=(--member-target "127.0.0.1:$second_port" --peer-pid "$peer_pid")
  fi
  local status=0
  timeout "$case_timeout" "${load_cpu[@]}" "$bench" "$scenario" --label "$name" \
    --target "127.0.0.1:$port" --server-pid "$server_pid" "${bench_extra[@]}" "$@" >>"$results" || status=$?
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

printf '\nmode: %s; servers: %s; nodes: %s\n' "$mode" "${servers[*]}" "$nodes"
printf 'iorelay: %s --host 127.0.0.1 --port PORT %s\n' "$release/iorelay" "${iorelay_args[*]}"
printf 'results: %s\n' "$out"

# Each mode's cases; the first word of each is its scenario's name.
quick_cases=(
  "connect --clients 2000 --procs 2 --hold-s 1 --settle-ms 500"
  "fanout --members 1000 --window 64 --duration-s 2 --drain-s 5"
  "fanout --members 1000 --rate 1000 --duration-s 2 --drain-s 5"
  "echo --clients 100 --duration-s 2"
  "webhook --clients 50 --baseline-s 1 --duration-s 2"
  "api-emit --members 1000 --connections 8 --duration-s 2 --drain-s 5"
)
full_cases=(
  "connect --clients 10000 --hold-s 3 --settle-ms 2000"
  "connect --clients 10000 --hold-s 30 --settle-ms 2000 --transport polling"
  "fanout --members 1000 --window 64 --duration-s 10 --drain-s 10"
  "fanout --members 1000 --rate 1000 --duration-s 10 --drain-s 10"
  "fanout --members 1000 --rate 100 --duration-s 10 --drain-s 10 --member-transport polling"
  "fanout --members 1000 --rate 1000 --duration-s 10 --drain-s 10 --member-transport polling"
  "echo --clients 100 --duration-s 10"
  "webhook --clients 50 --baseline-s 5 --duration-s 10"
  "api-emit --members 1000 --connections 8 --duration-s 10 --drain-s 10"
)
scenario_names=" connect fanout echo webhook api-emit "
if [[ $mode == quick ]]; then
  cases=("${quick_cases[@]}") rounds=1 case_timeout=60
else
  cases=("${full_cases[@]}") rounds=3 case_timeout=300
fi
soak=$([[ $mode == full ]] && echo yes || echo no)
if [[ $nodes == 2 ]]; then
  # Clusters are measured on the fan-out cases alone.
  chosen=()
  for case_args in "${cases[@]}"; do
    [[ $case_args == "fanout "* ]] && chosen+=("$case_args")
  done
  cases=("${chosen[@]}") soak=no
  if ! command -v redis-server >/dev/null || ! start_redis; then
    red "error: BENCH_NODES=2 needs redis-server" >&2
    exit 1
  fi
fi

# BENCH_SCENARIOS: names keep the mode's cases of those scenarios; anything else is a list of
# scenarios with their options, run once.
if [[ -n "${BENCH_SCENARIOS:-}" ]]; then
  read -r -a words <<<"$BENCH_SCENARIOS"
  by_name=yes
  for word in "${words[@]}"; do
    [[ $scenario_names == *" $word "* ]] || by_name=no
  done
  if [[ $by_name == yes ]]; then
    chosen=()
    for case_args in "${cases[@]}"; do
      [[ " ${words[*]} " == *" ${case_args%% *} "* ]] && chosen+=("$case_args")
    done
    cases=("${chosen[@]}")
    [[ " ${words[*]} " == *" connect "* ]] || soak=no
    step "$mode mode, the scenarios ${words[*]}: $rounds round(s)"
  else
    IFS=';' read -r -a cases <<<"$BENCH_SCENARIOS"
    rounds=1 case_timeout=120 soak=no
    step "the scenarios of BENCH_SCENARIOS, one round"
  fi
elif [[ $mode == quick ]]; then
  step "quick mode: one round, small sizes"
else
  step "full mode: three rounds"
fi
run_rounds "$rounds" "${cases[@]}"
if [[ $soak == yes && " ${servers[*]} " == *" iorelay "* ]]; then
  step "iorelay holding 19 000 clients for 60 s"
  case_timeout=240
  measure iorelay connect --clients 19000 --procs 2 --hold-s 60 --settle-ms 5000
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
