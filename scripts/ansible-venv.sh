#!/usr/bin/env bash
# A venv with one pinned ansible-core release (tests/constraints-ansible-<VERSION>.txt) and what the unit and
# integration tests need, for proving the collection on the oldest and newest ansible-core it supports.
# Usage: ansible-venv.sh VERSION DEST [PYTHON]. Built once per pin set (a stamp in DEST); prints DEST.
# Run the tests with O365_TEST_VENV=DEST (tests/helpers/playbook.py then runs DEST's ansible-playbook).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=$1 dest=$2 python=${3:-python3}
pins="$root/tests/constraints-ansible-$version.txt"
[ -s "$pins" ] || { echo "ansible-venv: no $pins" >&2; exit 2; }

# tests/constraints.txt pins everything for the test venv; its ansible pins (and resolvelib, whose range
# ansible-core sets) give way to the version file's.
base=$(mktemp)
trap 'rm -f "$base"' EXIT
grep -vE '^(ansible|ansible-core|resolvelib)==' "$root/tests/constraints.txt" > "$base"
want=$({ cat "$root/tests/requirements-ansible-range.txt" "$root/requirements.txt" "$base" "$pins"; "$python" -VV; } \
  | sha256sum | cut -d' ' -f1)
if [ "$(cat "$dest/.stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$dest"
  "$python" -m venv "$dest"
  "$dest/bin/pip" install --quiet --disable-pip-version-check -r "$root/tests/requirements-ansible-range.txt" \
    -c "$base" -c "$pins"
  echo "$want" > "$dest/.stamp"
fi
got=$("$dest/bin/python" -c 'import ansible.release as r; print(r.__version__)')
case "$got" in
  "$version".*) ;;
  *) echo "ansible-venv: $dest has ansible-core $got, not $version" >&2; exit 1 ;;
esac
echo "$dest"
