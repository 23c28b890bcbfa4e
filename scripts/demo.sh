#!/usr/bin/env bash
# The README's first command (`make demo`): sets everything up, starts the emulated Microsoft 365 tenant,
# runs the example playbook twice (the second run must change nothing), and tells how to run it for real.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/bootstrap.sh
# shellcheck source=scripts/env.sh
. scripts/env.sh

state=$(mktemp -d "${TMPDIR:-/tmp}/o365-demo.XXXXXX")
emu_pid=""
cleanup() {
  if [ -n "$emu_pid" ] && kill -0 "$emu_pid" 2>/dev/null; then
    kill -TERM "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
  fi
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== Starting the emulated tenant (no internet needed)"
PYTHONPATH="$root/tests${PYTHONPATH:+:$PYTHONPATH}" python -m emulator serve --credential certificate --state-dir "$state" > "$state/emulator.out" 2>&1 &
emu_pid=$!
for _ in $(seq 1 100); do
  [ -s "$state/emulator.env" ] && break
  kill -0 "$emu_pid" 2>/dev/null || { cat "$state/emulator.out"; exit 1; }
  sleep 0.1
done
[ -s "$state/emulator.env" ] || { echo "the emulator did not start"; cat "$state/emulator.out"; exit 1; }
# shellcheck disable=SC1091
. "$state/emulator.env"

export ANSIBLE_STDOUT_CALLBACK=default ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
play=(ansible-playbook -i "localhost," -c local -e "ansible_python_interpreter=$root/.venv/bin/python"
      -e "demo_workdir=$state" playbooks/smtp_oauth_app.yml)

echo "== First run: provision the app, grant SMTP access, send a mail, report"
"${play[@]}"
echo
echo "== Second run: the same declaration again (the test mail is not sent twice); nothing may change"
"${play[@]}" -e send_test_mail=false | tee "$state/second.out"
if grep -Eq 'changed=[1-9]' "$state/second.out"; then
  echo "demo: the second run changed something; that is a bug" >&2
  exit 1
fi
cat <<'EOT'

== Run the same playbook against a real tenant
In a new shell at the top of this checkout (the venv and collection path come from scripts/env.sh), set only
these (no file edits):
  . scripts/env.sh
  export AZURE_TENANT_ID=<tenant GUID or contoso.onmicrosoft.com>
  export AZURE_CLIENT_ID=<admin app id>                       # see docs/quickstart.md for the one-time bootstrap
  export AZURE_CLIENT_CERTIFICATE_PATH=/path/admin-cert.pem   # or AZURE_CLIENT_SECRET=...
  export DEMO_MAILBOX=noreply@contoso.com DEMO_RECIPIENT=you@contoso.com
  ansible-playbook -i localhost, -c local -e ansible_python_interpreter="$PWD/.venv/bin/python" \
    playbooks/smtp_oauth_app.yml
EOT
