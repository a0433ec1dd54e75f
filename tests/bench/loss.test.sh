#!/usr/bin/env bash
# The benchmark must not pass a run in which iorelay lost messages. One short fan-out against
# iorelay alone, with a rate limit the publisher exceeds (100 events per second per socket):
# chats over the limit are answered with an error ack or never, and their deliveries never
# happen. The run must exit with code 3 and say what was lost. Takes a few seconds once built.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/iorelay-bench-loss.XXXXXX")"
trap 'rm -rf "$work"' EXIT

fail() {
  echo "FAIL: $*" >&2
  echo "--- the benchmark's output:" >&2
  cat "$work/output" >&2
  exit 1
}

status=0
BENCH_SERVERS=iorelay \
  BENCH_IORELAY_ARGS="--max-events-per-second 100" \
  BENCH_SCENARIOS="fanout --members 20 --window 64 --duration-s 1 --drain-s 2" \
  BENCH_OUT="$work/results" NO_COLOR=1 \
  bash "$root/tests/bench/run.sh" --quick >"$work/output" 2>&1 || status=$?

grep -q -- "--max-events-per-second 100\b" "$work/output" ||
  fail "the run's header does not show iorelay's rate limit"
[[ $status -eq 3 ]] || fail "exit code $status, expected 3 (iorelay lost messages)"
# Whether the server answers chats over the limit with an error or not at all, the scenario
# names what happened to them; a chat never answered also counts its deliveries as missing.
if grep -Eq "^  LOST: [0-9]+ of [0-9]+ chats never acknowledged" "$work/output"; then
  grep -Eq "^  LOST: [0-9]+ of [0-9]+ deliveries of accepted chats never arrived" "$work/output" ||
    fail "the scenario does not name the deliveries of the unanswered chats"
else
  grep -Eq "^  LOST: [0-9]+ chats answered with an error" "$work/output" ||
    fail "the scenario names neither refused nor unanswered chats"
fi
grep -q "^  LOST: iorelay, fanout 20 members" "$work/output" ||
  fail "the report's losses section does not list the run"
grep -q "^error: iorelay lost messages" "$work/output" ||
  fail "the run does not end with the error"
if grep -q "answered with an error" "$work/output"; then
  grep -q "rate limited: more than 100 events per second" "$work/output" ||
    fail "the error acks are not the rate limit's"
fi
echo "ok: the benchmark exits 3 and names what iorelay lost under a 100 events/s limit"
