#!/usr/bin/env bash
# The relay's Prometheus alert rules (roles/relay/templates/o365-smtp-relay.rules.yml.j2), rendered with the role's
# defaults: `promtool check rules`, then `promtool test rules` (tests/relay_alerts/) proves each alert fires on a
# fixture that should raise it and stays quiet on one that should not. promtool is Debian's (package prometheus),
# unpacked into a cache: installing the package would start a Prometheus server on this machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. scripts/env.sh

cache=${RELAY_IMAGE_CACHE:-/var/cache/o365-smtp-oauth}/promtool
promtool=$cache/usr/bin/promtool
if [ ! -x "$promtool" ]; then
  work=$(mktemp -d)
  ( cd "$work" && { apt-get download prometheus >/dev/null 2>&1 \
      || { apt-get update >/dev/null && apt-get download prometheus >/dev/null; }; } ) \
    || { echo "35-alerts: FAILED: cannot download Debian's prometheus package (promtool)" >&2; exit 1; }
  mkdir -p "$cache.new" && dpkg-deb -x "$work"/prometheus_*.deb "$cache.new"
  rm -rf "$cache" && mv "$cache.new" "$cache" && rm -rf "$work"
fi
"$promtool" --version 2>&1 | head -1

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/rendered"
cp tests/relay_alerts/alerts_test.yml "$out/"
PYTHONPATH="$root/tests${PYTHONPATH:+:$PYTHONPATH}" python - "$out/rendered/o365-smtp-relay.rules.yml" <<'PY'
import sys
from helpers.relay_role import render
with open(sys.argv[1], "w") as handle:
    handle.write(render("o365-smtp-relay.rules.yml.j2"))
PY
"$promtool" check rules "$out/rendered/o365-smtp-relay.rules.yml"
"$promtool" test rules "$out/alerts_test.yml"
