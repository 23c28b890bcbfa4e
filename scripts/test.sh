#!/usr/bin/env bash
# The one test command (README: `make test`). Every stage runs; any failure makes the whole run fail.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
bash scripts/bootstrap.sh || exit 1
# shellcheck source=scripts/env.sh
. scripts/env.sh

failed=()
stage() {
  local name=$1; shift
  local t0=$SECONDS
  echo "=== stage: $name"
  if "$@"; then
    echo "=== stage $name: ok ($((SECONDS - t0)) s)"
  else
    echo "=== stage $name: FAILED ($((SECONDS - t0)) s)"
    failed+=("$name")
  fi
}

for s in scripts/test-stages/*.sh; do
  stage "$(basename "$s" .sh)" bash "$s"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED stages: ${failed[*]}"
  exit 1
fi
echo "all stages passed"
