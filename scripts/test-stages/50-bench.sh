#!/usr/bin/env bash
# Every benchmark under tests/benchmarks/, one table of figures (scripts/bench.sh). Figures are printed, never
# asserted: speed is read, not timed in tests. The stage fails only when a benchmark cannot run to its end.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
exec bash "$root/scripts/bench.sh"
