#!/usr/bin/env bash
# The relay role on two Debian systemd containers (podman), relay1 Debian 12 and relay2 Debian 13, delivering to
# the emulated tenant: molecule converge, idempotence, verify (roles/relay/molecule/default). Fails loudly when
# the host cannot run containers; never skips.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. scripts/env.sh

missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "40-relay: installing ${missing[*]} (apt)" >&2
  [ "$(id -u)" = 0 ] || { echo "40-relay: FAILED: need root to install ${missing[*]}" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y podman runc debootstrap >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y podman runc debootstrap >/dev/null; } \
    || { echo "40-relay: FAILED: cannot install podman, runc, debootstrap" >&2; exit 1; }
fi

started=$(date +%s)
# Captured, then checked, then evaluated: `eval "$(...)"` took the script's status away, and a failed build
# surfaced later as an unbound variable instead of its reason (printed by the script on stderr).
images=$(bash scripts/relay-image.sh) || { echo "40-relay: FAILED: the relay images could not be built (above)" >&2; exit 1; }
eval "$images"
if [ -z "${RELAY_IMAGE:-}" ] || [ -z "${RELAY_IMAGE_TRIXIE:-}" ]; then
  echo "40-relay: FAILED: scripts/relay-image.sh named no image: $images" >&2
  exit 1
fi
echo "40-relay: images $RELAY_IMAGE, $RELAY_IMAGE_TRIXIE ready in $(( $(date +%s) - started ))s" >&2

state=$(mktemp -d /tmp/o365-relay-tenant.XXXXXX)
PYTHONPATH="$root/tests${PYTHONPATH:+:$PYTHONPATH}" python roles/relay/molecule/default/tenant.py "$state" \
  >"$state/tenant.log" 2>&1 &
tenant_pid=$!
cleanup() { kill "$tenant_pid" 2>/dev/null || true; wait "$tenant_pid" 2>/dev/null || true; rm -rf "$state"; }
trap cleanup EXIT
for _ in $(seq 1 60); do [ -s "$state/tenant.json" ] && break; sleep 0.5; done
[ -s "$state/tenant.json" ] || { cat "$state/tenant.log" >&2; echo "40-relay: FAILED: the emulated tenant did not start" >&2; exit 1; }

RELAY_RUN_ID="run$(date +%s)"
export RELAY_TENANT_JSON="$state/tenant.json" RELAY_RUN_ID
cd roles/relay
molecule test -s default
echo "40-relay: passed in $(( $(date +%s) - started ))s" >&2
