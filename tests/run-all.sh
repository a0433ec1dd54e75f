#!/usr/bin/env bash
# Runs every iorelay test on a fresh machine: installs what is missing, builds, then runs the
# Rust tests, a one-minute fuzzing run, the socket.io-client end-to-end suite, the browser
# suite and the benchmark's quick mode (a smoke test: numbers are printed, not asserted).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '\n==> %s\n' "$*"; }

need_packages=()
command -v chromium >/dev/null 2>&1 || need_packages+=(chromium)
command -v redis-server >/dev/null 2>&1 || need_packages+=(redis-server)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_packages+=(nginx)
if ((${#need_packages[@]})); then
  step "installing ${need_packages[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "error: ${need_packages[*]} missing and not root; install with: sudo apt-get install -y ${need_packages[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi

step "installing JavaScript dependencies"
npm ci --prefix client-demo --no-audit --no-fund --loglevel=error
npm ci --prefix tests --no-audit --no-fund --loglevel=error

step "building the demo page"
npm run --prefix client-demo build --silent

step "building iorelay (release, as the Docker image does)"
cargo build --release --locked --bin iorelay

# Process-level tests (signals, memory, storms) and the JavaScript suites use the release build.
export IORELAY_BIN="${CARGO_TARGET_DIR:-$root/target}/release/iorelay"

step "Rust unit and integration tests"
# socketioxide's own unit tests build their sockets with its test constructors.
cargo test --locked --workspace --features socketioxide/__test_harness
step "fuzzing packet decoding for 60 s"
bash tests/fuzz/run.sh 60
cd tests
step "end-to-end tests with socket.io-client"
node --test --test-concurrency=1 js/
step "browser tests in headless Chromium, the server on one worker thread"
# As a one-CPU container runs it, on the single-threaded scheduler; the other suites start
# it with one worker thread per CPU.
IORELAY_WORKER_THREADS=1 node --test --test-concurrency=1 browser/
step "benchmark smoke test (quick mode)"
bash bench/run.sh --quick
