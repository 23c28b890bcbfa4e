#!/usr/bin/env bash
# yamllint on every YAML file, antsibull-changelog lint on the fragments and CHANGELOG.rst up to date with them
# (scripts/gen_changelog.py builds the release in a copy), ansible-lint (production profile, .ansible-lint) on the
# roles and playbooks that exist. All of them run; any failure fails the stage.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
. scripts/env.sh

rc=0
run() {
  echo "--- $*"
  "$@" || rc=1
}

run yamllint -s -c .yamllint .
run antsibull-changelog lint
run python scripts/gen_changelog.py --check

targets=()
for path in roles playbooks; do
  [ -d "$path" ] && targets+=("$path")
done
if [ ${#targets[@]} -gt 0 ]; then
  # ansible-lint resolves o365.smtp_oauth through ANSIBLE_COLLECTIONS_PATH (scripts/env.sh), never a download.
  NO_COLOR=1 run ansible-lint --offline --nocolor -c .ansible-lint "${targets[@]}"
else
  echo "--- ansible-lint: no roles/ or playbooks/ yet"
fi
exit $rc
