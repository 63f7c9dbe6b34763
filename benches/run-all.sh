#!/usr/bin/env bash
# Every benchmark of looptop, each side by side with the tools a user would pick instead, in one
# go; writes the report that BENCHMARKS.md is made of.
#
#   bash benches/run-all.sh [REPORT.md]        (default: BENCHMARKS.md at the repository root)
#
# It installs what it compares against when missing (btop, entr, hyperfine, tmux and gcc from
# Debian's packages; bacon, bottom and watchexec with `cargo install --locked`), builds looptop in
# release mode, then runs, one after the other so that none disturbs another:
#   1. benches/rerun_latency.py     save -> job start, 3,000-file storm (bacon, watchexec, entr)
#   2. benches/overhead.py          CPU time and peak RSS while a job runs (btop, bottom)
#   3. benches/duration_accuracy.py recorded durations beside hyperfine's
#   4. benches/scale.py             a tree of 100,000 files (watchexec)
#   5. benches/affected_first.py    affected tests first on a PyPI suite (pip download)
#   7. benches/profile_overhead.py  the Python profile: a job's duration and looptop's CPU,
#                                   profiling on and off side by side
#      cargo test --bench history   history queries at 100,000 runs (the test profile: its
#                                   DuckDB is built with -O2 and already cached by `cargo test`;
#                                   `cargo bench` would build DuckDB once more for release)
# Each script stops every process it starts, also when interrupted. Progress and raw results go
# to a results directory (printed at the start); the report holds the machine, the date, the
# commands and each script's own table. Run it on a quiet machine: the figures are CPU times and
# latencies, and anything else running moves them. About 12 minutes on 2 cores after the builds.
#
# Environment: OVERHEAD_SECONDS (60), OVERHEAD_BASELINE (another looptop binary, measured beside
# this one by overhead.py --baseline: what a change costs), SCALE_DIRS (1000) and SCALE_FILES (100), SAVES (50),
# AFFECTED_EDITS (5), PROFILE_ROUNDS (5), NO_INSTALL=1 to use only what is installed (a missing tool is then
# skipped and said so).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
report=${1:-$repo/BENCHMARKS.md}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
results=$(mktemp -d "${TMPDIR:-/tmp}/looptop-bench-XXXXXX")
echo "results and progress logs: $results" >&2

if [ "${NO_INSTALL:-0}" != 1 ]; then
  missing=()
  for tool in btop entr hyperfine tmux gcc; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]} (apt)" >&2
    sudo_=""
    [ "$(id -u)" = 0 ] || sudo_=sudo
    $sudo_ apt-get update -qq
    $sudo_ apt-get install -y -qq "${missing[@]}"
  fi
  crates=()
  for pair in bacon:bacon btm:bottom watchexec:watchexec-cli; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/${pair%%:*}" ] \
      || crates+=("${pair#*:}")
  done
  if [ "${#crates[@]}" -gt 0 ]; then
    echo "installing ${crates[*]} (cargo install --locked)" >&2
    # Their own target directory, so that looptop's build cache stays as it is.
    CARGO_TARGET_DIR="$results/tools-target" cargo install --locked "${crates[@]}" >&2
    rm -rf "$results/tools-target"
  fi
fi

echo "building looptop (release)" >&2
cargo build --release --quiet >&2
looptop="$CARGO_TARGET_DIR/release/looptop"

# One section of the report: a title, the command, and the script's own Markdown output.
section() {
  local title=$1 log=$2
  shift 2
  echo "running: $*" >&2
  {
    echo "## $title"
    echo
    echo '```sh'
    echo "$*" | sed "s|$looptop|target/release/looptop|; s|$repo/||g"
    echo '```'
    echo
  } >>"$results/report.md"
  # The scripts' own headings go one level down, under this section's.
  if "$@" 2>"$results/$log" | sed 's/^## /### /' >>"$results/report.md"; then
    echo >>"$results/report.md"
  else
    printf '\nThis benchmark failed or missed a target (exit %s); its log ends with:\n\n```\n%s\n```\n\n' \
      "$?" "$(tail -n 20 "$results/$log")" >>"$results/report.md"
  fi
}

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem_gib=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
{
  echo "# Benchmarks"
  echo
  echo "Written by \`bash benches/run-all.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'):"
  echo "$(uname -sr), $(nproc) cores ($cpu_model), $mem_gib GiB of memory;"
  echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "looptop $("$looptop" --version | cut -d' ' -f2) at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)'), release build."
  echo "Each figure is measured side by side with the alternative in the same run; the scripts"
  echo "describe their methods at the top of each file in \`benches/\`. Rerun it all with"
  echo "\`bash benches/run-all.sh\`."
  echo
} >"$results/report.md"

section "1. File save to job start, and a storm of 3,000 files" rerun_latency.log \
  python3 benches/rerun_latency.py --looptop "$looptop" --saves "${SAVES:-50}" \
  --out "$results/rerun_latency.json"
section "2. Overhead while a job runs" overhead.log \
  python3 benches/overhead.py --looptop "$looptop" --seconds "${OVERHEAD_SECONDS:-60}" \
  ${OVERHEAD_BASELINE:+--baseline "$OVERHEAD_BASELINE"}
section "3. Duration accuracy beside hyperfine" duration_accuracy.log \
  python3 benches/duration_accuracy.py --looptop "$looptop"
section "4. Scale: a watched tree of 100,000 files" scale.log \
  python3 benches/scale.py --looptop "$looptop" --dirs "${SCALE_DIRS:-1000}" \
  --files "${SCALE_FILES:-100}"
section "5. Affected tests first, on a real suite from PyPI" affected_first.log \
  python3 benches/affected_first.py --looptop "$looptop" --edits "${AFFECTED_EDITS:-5}"
{
  echo "## 6. History queries at 100,000 runs"
  echo
  echo '```sh'
  echo "cargo test --bench history"
  echo '```'
  echo
  echo '```'
} >>"$results/report.md"
echo "running: cargo test --bench history" >&2
if cargo test --quiet --bench history >"$results/history.txt" 2>"$results/history.log"; then
  cat "$results/history.txt" >>"$results/report.md"
else
  tail -n 20 "$results/history.log" >>"$results/report.md"
fi
echo '```' >>"$results/report.md"
echo >>"$results/report.md"
section "7. Python profile: job duration and looptop's CPU, profiling on and off" profile_overhead.log \
  python3 benches/profile_overhead.py --looptop "$looptop" --rounds "${PROFILE_ROUNDS:-5}"

cp "$results/report.md" "$report"
echo "report: $report" >&2
