#!/usr/bin/env bash
# The generated docs (troubleshooting page, module reference) must match the code they come from.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. scripts/env.sh
python scripts/gen_docs.py --check
