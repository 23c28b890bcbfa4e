# shellcheck shell=bash
# Sourced by the other scripts: the venv and the collection path, nothing from the caller's Ansible setup.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$root/.build/collections:$root/.venv/lib/python3.11/site-packages"
export PYTHONPATH="$root/.build/collections${PYTHONPATH:+:$PYTHONPATH}"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_NOCOLOR=1
export PYTHONDONTWRITEBYTECODE=1
