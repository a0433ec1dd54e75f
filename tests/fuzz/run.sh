#!/usr/bin/env bash
# Fuzzes iorelay's packet decoding for a bounded time: `tests/fuzz/run.sh SECONDS [--release]`
# (default 60 s).
#
# Installs cargo-fuzz when it is missing. The default build is unoptimized and without a
# sanitizer (iorelay has no unsafe code on this path): it compiles in about 2 minutes and runs
# a few thousand inputs per second, which is what CI uses. `--release` builds optimized with
# AddressSanitizer, for long runs: the first build takes about 20 minutes.
#
# The corpus libFuzzer grows goes to corpus/packet/ (not committed); it starts from the
# committed seeds in seeds/packet/. A crashing input is saved under artifacts/packet/ and the
# script exits non-zero; add it to seeds/packet/ once fixed.
set -euo pipefail

usage() { echo "usage: $0 SECONDS [--release]" >&2; exit 2; }
seconds="${1:-60}"
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -ge 1 ] || usage
build=(--sanitizer none --dev)
case "${2:-}" in
  "") ;;
  --release) build=() ;;
  *) usage ;;
esac
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  timeout 1800 cargo install cargo-fuzz --locked
fi

# libFuzzer needs compiler flags that stable rustc accepts only with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
mkdir -p corpus/packet
timeout 3600 cargo fuzz build --fuzz-dir . "${build[@]}" packet
timeout "$((seconds + 300))" cargo fuzz run --fuzz-dir . "${build[@]}" packet corpus/packet seeds/packet -- \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
