#!/usr/bin/env bash
# Fuzzes iorelay's packet decoding for a bounded time: `tests/fuzz/run.sh SECONDS` (default 60).
#
# Installs cargo-fuzz when it is missing. The corpus libFuzzer grows goes to corpus/packet/
# (not committed); it starts from the committed seeds in seeds/packet/. A crashing input is
# saved under artifacts/packet/ and the script exits non-zero; add it to seeds/packet/ once fixed.
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 SECONDS" >&2
  exit 2
fi
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  timeout 1800 cargo install cargo-fuzz --locked
fi

# libFuzzer needs sanitizer flags that stable rustc accepts only with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
mkdir -p corpus/packet
# Building the instrumented server takes most of the time; the run itself stops after $seconds.
timeout 3600 cargo fuzz build --fuzz-dir . packet
timeout "$((seconds + 300))" cargo fuzz run --fuzz-dir . packet corpus/packet seeds/packet -- \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
