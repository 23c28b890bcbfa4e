#!/usr/bin/env bash
# The generated docs must match what they come from: the troubleshooting page and module reference (the code),
# the guides on the rendered collection docs (docs/*.md, converted by pandoc into docs/docsite/rst/); then
# antsibull-docs lint-collection-docs checks the collection docs as docs.ansible.com would build them (extra docs,
# links.yml, every module's and the role's documentation). Installs pandoc when missing, as 15-dovecot installs
# Dovecot; never skips.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. scripts/env.sh
t0=$SECONDS

if ! command -v pandoc >/dev/null 2>&1; then
  echo "25-docs: installing pandoc (apt)" >&2
  [ "$(id -u)" = 0 ] || { echo "25-docs: FAILED: need root to install pandoc" >&2; exit 1; }
  install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends pandoc >/dev/null; }
  install || { apt-get update -q >/dev/null && install; } || { echo "25-docs: FAILED: cannot install pandoc" >&2; exit 1; }
fi

python scripts/gen_docs.py --check
python scripts/gen_docsite.py --check >/dev/null || python scripts/gen_docsite.py --check
antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs \
  "$root/.build/collections/ansible_collections/o365/smtp_oauth"
echo "25-docs: $((SECONDS - t0)) s"
