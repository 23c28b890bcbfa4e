#!/usr/bin/env bash
# Sets up everything the demo and the tests need, from nothing but Python (3.11 to 3.13), pip and apt.
# Idempotent: a second run only checks stamps. Prints where things are.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

venv="$root/.venv"
stamp="$venv/.requirements.sha256"
want=$(cat requirements-test.txt tests/constraints.txt | sha256sum | cut -d' ' -f1)

# ansible-core 2.19 (tests/constraints.txt) runs its controller on Python 3.11 to 3.13; those three are tested
# (README, "Tested versions"). A newer Python may lack wheels for a pinned package: said, then tried.
if ! python3 -c 'import sys; assert sys.version_info[:2] >= (3, 11)' 2>/dev/null; then
  echo "bootstrap: python3 must be Python 3.11 or later (ansible-core 2.19 and the pinned packages need it)," \
    "found: $(python3 -V 2>&1); install a newer python3 or put one first on PATH" >&2
  exit 1
fi
if ! python3 -c 'import sys; assert sys.version_info[:2] <= (3, 13)' 2>/dev/null; then
  echo "bootstrap: warning: $(python3 -V 2>&1) is newer than the tested 3.11 to 3.13; trying anyway" >&2
fi
# Debian's own python3 has no venv / ensurepip without the python3-venv package: install it when missing.
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing python3-venv (apt)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing Python packages into .venv (pinned by tests/constraints.txt)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-test.txt -c tests/constraints.txt
  echo "$want" > "$stamp"
fi

# Ansible finds the collection under ansible_collections/<namespace>/<name>: a symlink to this checkout.
coll="$root/.build/collections/ansible_collections/o365"
mkdir -p "$coll"
if [ "$(readlink "$coll/smtp_oauth" 2>/dev/null)" != "$root" ]; then
  rm -rf "$coll/smtp_oauth"
  ln -s "$root" "$coll/smtp_oauth"
fi
