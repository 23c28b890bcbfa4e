#!/usr/bin/env bash
# The one test command (README: `make test`). Every stage runs; any failure makes the whole run fail.
# `scripts/test.sh 10-pytest 30-lint` runs only the stages named (the Makefile's `make unit`, `make lint`...).
#
# Order and overlap: the container stages (relay molecule, Debian 13) spend much of their time building images
# and waiting on packages and services, so they start first, in the background. The pytest stage runs in the
# foreground; the short stages (LANE) run one after the other beside it, in a background lane of their own: run
# after pytest, they kept one of the 2 cores idle for ~5 minutes (ansible-test sanity, the linters and the docs
# checks run one process at a time), once the container stages were over. The lane starts with the stages that
# need no apt package, so that its apt installs come after the container stages' own (apt-get update does not
# wait for another's lock). The benchmarks run last and alone, so that what they print is not skewed by other work.
# Every stage prints its own time; a background stage's output is shown when it ends.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
bash scripts/bootstrap.sh || exit 1
# shellcheck source=scripts/env.sh
. scripts/env.sh

BACKGROUND=" 40-relay 45-trixie "
# In this order (apt-free first, see above); a stage of scripts/test-stages/ in no list runs in the foreground.
LANE="15-package 30-lint 25-docs 20-sanity 15-dovecot 35-alerts"
ALONE=" 50-bench "

all=()
for s in scripts/test-stages/*.sh; do all+=("$(basename "$s" .sh)"); done
if [ $# -gt 0 ]; then
  for name in "$@"; do
    [ -f "scripts/test-stages/$name.sh" ] || { echo "no stage $name; stages: ${all[*]}" >&2; exit 2; }
  done
  wanted=("$@")
else
  wanted=("${all[@]}")
fi

failed=()
started=$SECONDS
stage() {
  local name=$1 t0=$SECONDS
  echo "=== stage: $name"
  if bash "scripts/test-stages/$name.sh"; then
    echo "=== stage $name: ok ($((SECONDS - t0)) s)"
  else
    echo "=== stage $name: FAILED ($((SECONDS - t0)) s)"
    return 1
  fi
}

logs=$(mktemp -d /tmp/o365-stages.XXXXXX)
trap 'rm -rf "$logs"' EXIT
# Stages running at once may each install a package: apt waits for another's lock instead of failing.
printf 'DPkg::Lock::Timeout "900";\n' > "$logs/apt.conf"
export APT_CONFIG="$logs/apt.conf"
declare -A pids=()
lane=()
if [ ${#wanted[@]} -gt 1 ]; then
  for name in "${wanted[@]}"; do
    case "$BACKGROUND" in *" $name "*)
      echo "=== stage $name: started in the background (output when it ends)"
      stage "$name" > "$logs/$name.log" 2>&1 &
      pids[$name]=$!
    esac
  done
  for name in $LANE; do
    case " ${wanted[*]} " in *" $name "*) lane+=("$name") ;; esac
  done
fi
lane_pid=""
if [ ${#lane[@]} -gt 0 ]; then
  echo "=== stages ${lane[*]}: started one after the other in the background (output when they end)"
  ( for name in "${lane[@]}"; do stage "$name" || echo "$name" >> "$logs/lane.failed"; done ) > "$logs/lane.log" 2>&1 &
  lane_pid=$!
fi

for name in "${wanted[@]}"; do
  [ -n "${pids[$name]:-}" ] && continue
  case " ${lane[*]} " in *" $name "*) continue ;; esac
  case "$ALONE" in *" $name "*) continue ;; esac
  stage "$name" || failed+=("$name")
done

for name in "${!pids[@]}"; do
  wait "${pids[$name]}" || failed+=("$name")
  cat "$logs/$name.log"
done
if [ -n "$lane_pid" ]; then
  wait "$lane_pid"
  cat "$logs/lane.log"
  [ -s "$logs/lane.failed" ] && mapfile -t -O "${#failed[@]}" failed < "$logs/lane.failed"
fi

for name in "${wanted[@]}"; do
  case "$ALONE" in *" $name "*) stage "$name" || failed+=("$name") ;; esac
done

echo "=== all stages: $((SECONDS - started)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED stages: ${failed[*]}"
  exit 1
fi
echo "all stages passed"
