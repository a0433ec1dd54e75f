#!/usr/bin/env bash
# Runs every iorelay test on a fresh machine, in stages:
#
#   install  apt packages (Chromium, Redis, nginx), JavaScript dependencies, cargo-fuzz
#   build    the demo page and the release server (as the Docker image builds it)
#   cargo    Rust unit and integration tests
#   fuzz     one minute of fuzzing packet decoding (its output goes to a log file)
#   js       the socket.io-client end-to-end suite
#   browser  the browser suite in headless Chromium
#   bench    the benchmark's loss check, then its quick mode (numbers printed, not asserted;
#            a run in which iorelay loses messages fails)
#
#   bash tests/run-all.sh               # every stage
#   bash tests/run-all.sh js browser    # these stages, after what they need: cargo, js and
#                                       # browser use the release server, so build runs first;
#                                       # install runs first when something it installs is missing
#
# Each stage prints a line when it starts and one with its duration when it ends. A failing
# stage is named with its duration and the script exits non-zero. The last lines give every
# stage's duration and the disk used by the build directories.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

stages=(install build cargo fuzz js browser bench)
target_dir="${CARGO_TARGET_DIR:-$root/target}"
# tests/fuzz is a workspace of its own, built into its own target directory.
fuzz_target_dir="${CARGO_TARGET_DIR:-$root/tests/fuzz/target}"
logs="$target_dir/test-logs"

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# --- which stages -----------------------------------------------------------------------------

declare -A selected=()
if (($# == 0)); then
  for stage in "${stages[@]}"; do selected[$stage]=1; done
fi
for argument in "$@"; do
  case " ${stages[*]} " in
    *" $argument "*) selected[$argument]=1 ;;
    *)
      [[ $argument == -h || $argument == --help ]] && { usage; exit 0; }
      echo "error: unknown stage \"$argument\"; the stages: ${stages[*]}" >&2
      usage >&2
      exit 2
      ;;
  esac
done

# Apt packages the suites start: Chromium (browser), redis-server (cargo, js), nginx (js).
missing_packages() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
  echo "${missing[@]}"
}

# What the selected stages need that the command line did not name.
if [[ -n "${selected[cargo]:-}${selected[js]:-}${selected[browser]:-}" && -z "${selected[build]:-}" ]]; then
  echo "note: adding the build stage: cargo, js and browser run the release server (browser its page)"
  selected[build]=1
fi
if [[ -z "${selected[install]:-}" && -n "${selected[build]:-}${selected[cargo]:-}${selected[js]:-}${selected[browser]:-}" ]]; then
  read -r -a missing <<<"$(missing_packages)"
  [[ -d client-demo/node_modules ]] || missing+=(client-demo/node_modules)
  [[ -d tests/node_modules ]] || missing+=(tests/node_modules)
  [[ -d examples/chat/node_modules ]] || missing+=(examples/chat/node_modules)
  if ((${#missing[@]})); then
    echo "note: adding the install stage, for ${missing[*]}"
    selected[install]=1
  fi
fi

# --- stage bookkeeping ------------------------------------------------------------------------

current=""
current_started=0
run_started=$SECONDS
summary=()

duration() {
  local seconds=$1
  if ((seconds >= 60)); then
    printf '%dm%02ds' $((seconds / 60)) $((seconds % 60))
  else
    printf '%ds' "$seconds"
  fi
}

# run_stage NAME DESCRIPTION: runs stage_NAME between its start and end lines.
run_stage() {
  current=$1
  current_started=$SECONDS
  printf '\n==> [%s] %s\n' "$1" "$2"
  cd "$root"
  "stage_$1"
  cd "$root"
  local took
  took="$(duration $((SECONDS - current_started)))"
  printf '<== [%s] passed in %s%s\n' "$current" "$took" "${stage_note:-}"
  summary+=("$current $took")
  current=""
  stage_note=""
}

on_exit() {
  local status=$1
  trap - EXIT
  if ((status != 0)) && [[ -n "$current" ]]; then
    local took
    took="$(duration $((SECONDS - current_started)))"
    summary+=("$current FAILED after $took")
    printf '\n<== [%s] FAILED after %s (exit code %d)\n' "$current" "$took" "$status"
  fi
  if ((${#summary[@]})); then
    local line
    line="$(printf '%s, ' "${summary[@]}")"
    printf '\nstages: %s; total %s\n' "${line%, }" "$(duration $((SECONDS - run_started)))"
    local dirs=("$target_dir")
    [[ "$fuzz_target_dir" == "$target_dir" ]] || dirs+=("$fuzz_target_dir")
    for dir in "${dirs[@]}"; do
      if [[ -d "$dir" ]]; then
        printf 'disk used by %s: %s\n' "$dir" "$(du -sh "$dir" 2>/dev/null | cut -f1)"
      fi
    done
  fi
  if ((status != 0)) && [[ -n "$current" ]]; then
    echo "error: the $current stage failed" >&2
  fi
  exit "$status"
}
trap 'on_exit $?' EXIT

# --- the stages -------------------------------------------------------------------------------

stage_install() {
  local need_packages
  read -r -a need_packages <<<"$(missing_packages)"
  if ((${#need_packages[@]})); then
    echo "installing ${need_packages[*]}"
    if [[ $(id -u) -ne 0 ]]; then
      echo "error: ${need_packages[*]} missing and not root; install with: sudo apt-get install -y ${need_packages[*]}" >&2
      exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_packages[@]}" >/dev/null
  fi
  echo "installing JavaScript dependencies"
  npm ci --prefix client-demo --no-audit --no-fund --loglevel=error
  npm ci --prefix tests --no-audit --no-fund --loglevel=error
  # The chat example; its install copies the socket.io-client bundle next to its page.
  npm ci --prefix examples/chat --no-audit --no-fund --loglevel=error
  if [[ -n "${selected[fuzz]:-}" ]] && ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    timeout 1800 cargo install cargo-fuzz --locked
  fi
}

stage_build() {
  echo "building the demo page"
  npm run --prefix client-demo build --silent
  echo "building iorelay (release, as the Docker image does)"
  cargo build --release --locked --bin iorelay
}

stage_cargo() {
  # socketioxide's own unit tests build their sockets with its test constructors.
  cargo test --locked --workspace --features socketioxide/__test_harness
}

stage_fuzz() {
  mkdir -p "$logs"
  local log="$logs/fuzz.log"
  echo "fuzzing for 60 s; output in $log"
  local status=0
  bash tests/fuzz/run.sh 60 >"$log" 2>&1 || status=$?
  if ((status != 0)); then
    echo "--- the last 40 lines of $log:" >&2
    tail -n 40 "$log" >&2
    return "$status"
  fi
  # libFuzzer's final statistics (-print_final_stats=1) say how much was tried.
  local runs
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  stage_note=" (${runs:-?} inputs; log: $log)"
}

stage_js() {
  cd tests
  node --test --test-concurrency=1 js/
}

stage_browser() {
  cd tests
  # As a one-CPU container runs it, on the single-threaded scheduler; the other suites start
  # it with one worker thread per CPU.
  IORELAY_WORKER_THREADS=1 node --test --test-concurrency=1 browser/
}

stage_bench() {
  cd tests
  echo "loss check: the benchmark fails a run in which iorelay loses messages"
  bash bench/loss.test.sh
  echo "quick mode"
  bash bench/run.sh --quick
}

# Process-level tests (signals, memory, storms) and the JavaScript suites use the release build.
export IORELAY_BIN="$target_dir/release/iorelay"
stage_note=""

declare -A descriptions=(
  [install]="apt packages, JavaScript dependencies and cargo-fuzz"
  [build]="the demo page and iorelay (release)"
  [cargo]="Rust unit and integration tests"
  [fuzz]="fuzzing packet decoding for 60 s"
  [js]="end-to-end tests with socket.io-client"
  [browser]="browser tests in headless Chromium, the server on one worker thread"
  [bench]="benchmark: loss check, then quick mode"
)
chosen=()
for stage in "${stages[@]}"; do
  [[ -z "${selected[$stage]:-}" ]] || chosen+=("$stage")
done
echo "stages: ${chosen[*]}"
for stage in "${chosen[@]}"; do
  if [[ -n "${selected[$stage]:-}" ]]; then
    run_stage "$stage" "${descriptions[$stage]}"
  fi
done
