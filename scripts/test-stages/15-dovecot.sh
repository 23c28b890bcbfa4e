#!/usr/bin/env bash
# A second XOAUTH2 server nobody here wrote: Dovecot's submission service (Debian 12 packages) validating the
# emulated tenant's tokens locally; send_mail (through ansible-playbook) and the relay's proxy deliver through it
# (tests/dovecot). Installs Dovecot when missing, as 40-relay installs podman; never skips.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. scripts/env.sh
started=$(date +%s)

if [ ! -x /usr/sbin/dovecot ] || [ ! -x /usr/lib/dovecot/submission ]; then
  echo "15-dovecot: installing dovecot-core dovecot-submissiond (apt)" >&2
  [ "$(id -u)" = 0 ] || { echo "15-dovecot: FAILED: need root to install dovecot-core dovecot-submissiond" >&2; exit 1; }
  install() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dovecot-core dovecot-submissiond >/dev/null; }
  install || { apt-get update >/dev/null && install; } \
    || { echo "15-dovecot: FAILED: cannot install dovecot-core dovecot-submissiond" >&2; exit 1; }
  echo "15-dovecot: Dovecot $(dovecot --version) installed in $(( $(date +%s) - started ))s" >&2
fi

python -m pytest -n 2 -p no:cacheprovider tests/dovecot
echo "15-dovecot: passed in $(( $(date +%s) - started ))s" >&2
