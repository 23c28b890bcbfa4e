# shellcheck shell=bash
# Sourced by the other scripts: the venv and the collection path, nothing from the caller's Ansible setup.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$root/.venv/bin:$PATH"
# The venv's site-packages (collections of the `ansible` package), whichever Python 3 built the venv.
_o365_site=$(echo "$root"/.venv/lib/python3.*/site-packages)
export ANSIBLE_COLLECTIONS_PATH="$root/.build/collections:$_o365_site"
unset _o365_site
export PYTHONPATH="$root/.build/collections${PYTHONPATH:+:$PYTHONPATH}"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_NOCOLOR=1
export PYTHONDONTWRITEBYTECODE=1
