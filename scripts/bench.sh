#!/usr/bin/env bash
# Runs every benchmark under tests/benchmarks/ and prints one table of their figures (no timed assertions:
# benchmarks measure, they do not pass or fail). Usage: bash scripts/bench.sh [name-filter]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
bash scripts/bootstrap.sh >/dev/null || exit 1
# shellcheck source=scripts/env.sh
. scripts/env.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
for bench in tests/benchmarks/bench_*.py; do
  name=$(basename "$bench" .py)
  case "$name" in *"${1:-}"*) ;; *) continue ;; esac
  t0=$SECONDS
  if ! python "$bench" > "$out/$name.txt" 2> "$out/$name.err"; then
    echo "  $name failed:" >&2; tail -20 "$out/$name.err" >&2; status=1
  fi
  echo "=== $name: $((SECONDS - t0)) s" >&2  # the suite's time budget: what each benchmark costs
done
printf '\n%-22s | %s\n' "benchmark" "figure"
printf -- '-----------------------+-------------------------------------------------------------------------------\n'
for f in "$out"/*.txt; do
  [ -e "$f" ] || continue
  name=$(basename "$f" .txt)
  while IFS= read -r line; do
    [ -n "$line" ] && printf '%-22s | %s\n' "${name#bench_}" "$line"
    name=""
  done < "$f"
done
exit $status
