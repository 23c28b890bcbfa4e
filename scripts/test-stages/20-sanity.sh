#!/usr/bin/env bash
# ansible-test sanity on a COPY of the collection (ansible-test resolves symlinks, and it needs the tree at
# ansible_collections/o365/smtp_oauth): the git-tracked files plus untracked ones that are not ignored.
# Each sanity test gets its own venv under ~/.ansible/test/venv (kept between runs: only the first run installs).
# No ignore file: tests/sanity/ stays empty; fix the code instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. scripts/env.sh

dest="$root/.build/sanity/ansible_collections/o365/smtp_oauth"
# One sanity run at a time in this checkout (several people share the work tree; the copy is rebuilt).
mkdir -p "$root/.build"
exec 9>"$root/.build/sanity.lock"
flock 9
# tests/output holds ansible-test's delegation venv: kept across runs so only the first run builds it.
keep="$root/.build/sanity-output"
rm -rf "$keep"
[ -d "$dest/tests/output" ] && mv "$dest/tests/output" "$keep"
rm -rf "$dest"
mkdir -p "$dest/tests"
[ -d "$keep" ] && mv "$keep" "$dest/tests/output"
# Files that exist (a tracked file deleted in the work tree is skipped).
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -xf - -C "$dest"
# The copy lies inside this checkout's .build/ (git-ignored): ansible-test would see no file at all. Its own
# repository makes every copied file a target.
git -C "$dest" init -q
git -C "$dest" add -A

# ansible-test bootstraps pip in each venv with a script it downloads from a host that is not reachable here.
# The stand-in installs the pip wheel bundled with the interpreter (ensurepip); ansible-test then pins pip itself.
pip_version=$(python -c 'import re,ansible_test._internal.python_requirements as r, inspect
print(re.search(r"pip=.(\d+(?:\.\d+)+)", inspect.getsource(r.get_venv_packages)).group(1))')
stand_in="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [ ! -s "$stand_in" ]; then
  mkdir -p "$(dirname "$stand_in")"
  printf '%s\n' '# Offline stand-in for get-pip.py: pip from the wheel bundled with this Python.' \
    'import ensurepip' 'ensurepip.bootstrap(upgrade=True)' > "$stand_in"
  rm -f "$stand_in.download"
fi

# The shellcheck sanity test is skipped without its binary: install it once (Debian package, non-interactive).
if ! command -v shellcheck >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q shellcheck >/dev/null \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -q shellcheck >/dev/null; }
fi

# Tests that need what this machine does not have (docker, network to galaxy, a shellcheck binary, ...)
# are reported by ansible-test as skipped, not failed.
cd "$dest"
t0=$SECONDS
rc=0
ansible-test sanity --venv --requirements --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --color no "$@" || rc=$?
echo "sanity: $((SECONDS - t0)) s"
exit "$rc"
