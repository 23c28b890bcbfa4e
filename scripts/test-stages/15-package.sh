#!/usr/bin/env bash
# The collection as a user gets it: build the tarball, check it ships no development files, install it into an
# empty collections path (offline; community.crypto, its one dependency, comes from the ansible package in the
# venv, as for a user who installed ansible), then from outside the checkout: ansible-doc for every module and the
# role, and the example playbook's --syntax-check.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. scripts/env.sh
t0=$SECONDS

work=$(mktemp -d /tmp/o365-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
ansible-galaxy collection build --output-path "$work/dist" . >/dev/null
tarball=$(ls "$work"/dist/o365-smtp_oauth-*.tar.gz)
echo "15-package: built $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"

# No development file in the tarball.
tar -tzf "$tarball" > "$work/files"
bad=$(grep -E '^(\.ansible-lint|\.yamllint|\.gitignore|\.ci/|\.venv|\.build/|Makefile|pytest\.ini|requirements-test\.txt|scripts/|tests/|docs/development\.md|roles/[^/]+/molecule/|changelogs/fragments/)' "$work/files" || true)
if [ -n "$bad" ]; then
  echo "15-package: FAILED: development files in the tarball:" >&2
  echo "$bad" >&2
  exit 1
fi

# Installed into an empty path; the checkout (.build/collections, PYTHONPATH) is not visible any more.
site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export ANSIBLE_COLLECTIONS_PATH="$work/collections:$site"
unset PYTHONPATH
cd "$work"
ansible-galaxy collection install --offline -p "$work/collections" "$tarball" >/dev/null
installed=$(ansible-galaxy collection list o365.smtp_oauth --format json \
  | python -c 'import json,sys; print(" ".join(json.load(sys.stdin)))')
case "$installed" in
  "$work/collections/ansible_collections") ;;
  *) echo "15-package: FAILED: o365.smtp_oauth resolves to '$installed', not the installed tarball" >&2; exit 1 ;;
esac

modules=$(ansible-doc -t module -l o365.smtp_oauth --json | python -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin))))')
expected=$(cd "$root/plugins/modules" && for f in *.py; do printf 'o365.smtp_oauth.%s\n' "${f%.py}"; done | sort | tr '\n' ' ')
if [ "$modules " != "$expected" ]; then
  echo "15-package: FAILED: ansible-doc lists '$modules', the checkout has '$expected'" >&2
  exit 1
fi
for module in $modules; do
  ansible-doc -t module "$module" > "$work/doc.txt"
  grep -q "REQUIREMENTS" "$work/doc.txt" || { echo "15-package: FAILED: $module shows no requirements" >&2; exit 1; }
done
ansible-doc -t role o365.smtp_oauth.relay >/dev/null
ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false \
  ansible-playbook o365.smtp_oauth.smtp_oauth_app --syntax-check >/dev/null
ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false \
  ansible-playbook o365.smtp_oauth.credential_expiry --syntax-check >/dev/null
echo "15-package: ansible-doc of $(echo "$modules" | wc -w) modules and the role, both playbooks' syntax ok"

# ansible-builder in a venv of its own (its dependencies do not fit the test venv's pins), built once, pinned by
# tests/constraints-builder.txt.
builder="$root/.build/builder-venv"
want=$(sha256sum "$root/tests/constraints-builder.txt" | cut -d' ' -f1)
if [ "$(cat "$builder/.constraints.sha256" 2>/dev/null)" != "$want" ]; then
  rm -rf "$builder"
  python3 -m venv "$builder"
  "$builder/bin/pip" install --quiet --disable-pip-version-check -r "$root/tests/constraints-builder.txt"
  echo "$want" > "$builder/.constraints.sha256"
fi
ansible_builder="$builder/bin/ansible-builder"

# Execution environment: ansible-builder finds the collection's Python and system requirements in the installed
# collection (meta/execution-environment.yml), and `create` writes a build context for it (offline: no image).
"$ansible_builder" introspect --sanitize "$work/collections" > "$work/introspect.txt"
for dep in msal requests cryptography azure-identity gcc ca-certificates; do
  grep -q "$dep" "$work/introspect.txt" \
    || { cat "$work/introspect.txt" >&2; echo "15-package: FAILED: ansible-builder does not see $dep" >&2; exit 1; }
done
mkdir -p "$work/ee"
cp "$tarball" "$work/ee/"
cat > "$work/ee/requirements.yml" <<YAML
---
collections:
  - name: $(basename "$tarball")
    type: file
YAML
cat > "$work/ee/execution-environment.yml" <<'YAML'
---
version: 3
images:
  base_image:
    name: quay.io/ansible/awx-ee:latest
dependencies:
  galaxy: requirements.yml
additional_build_files:
  - src: o365-smtp_oauth.tar.gz
    dest: collections
YAML
cp "$tarball" "$work/ee/o365-smtp_oauth.tar.gz"
(cd "$work/ee" && "$ansible_builder" create -f execution-environment.yml -c context >/dev/null)
for f in Containerfile _build/requirements.yml _build/scripts/introspect.py; do
  [ -s "$work/ee/context/$f" ] || { echo "15-package: FAILED: ansible-builder create wrote no $f" >&2; exit 1; }
done
grep -q "introspect" "$work/ee/context/Containerfile" \
  || { echo "15-package: FAILED: the build context does not collect the collections' requirements" >&2; exit 1; }
echo "15-package: ansible-builder introspect sees every dependency; create wrote a build context"
echo "15-package: $((SECONDS - t0)) s"
