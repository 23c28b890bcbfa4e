#!/usr/bin/env bash
# Unit, emulator and integration tests (pytest; the integration tests run ansible-playbook against the emulator).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. scripts/env.sh
exec python -m pytest -n 2 -p no:cacheprovider tests/unit tests/emulator tests/integration
