#!/usr/bin/env python
"""Generate CHANGELOG.rst with antsibull-changelog: the release of galaxy.yml's `version` from the fragments.

The collection has not been released yet: galaxy.yml's version (0.1.0) and every module's `version_added` name the
first release, and every fragment under changelogs/fragments/ belongs to it. This script runs
`antsibull-changelog release` on a copy of the checkout (tracked files plus new ones not ignored), so the fragments
stay where they are, and keeps the CHANGELOG.rst it writes. `--check` fails when the committed CHANGELOG.rst
differs, or when antsibull-changelog cannot build the release (a broken fragment, a plugin it cannot read).

At the real release, run `antsibull-changelog release` in the checkout itself: it writes
changelogs/changelog.yaml and removes the fragments (changelogs/config.yaml, keep_fragments: false); bump
galaxy.yml's version for the next one. Run from the repository root after `. scripts/env.sh`.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from contract_file import write_or_check  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The release date is not printed in CHANGELOG.rst; a fixed one keeps the copy's changelog.yaml reproducible.
DATE = "2026-12-01"


def collection_copy(dest):
    """The checkout's files under dest/ansible_collections/<ns>/<name> (antsibull-changelog reads plugins there)."""
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        galaxy = yaml.safe_load(handle)
    tree = os.path.join(dest, "ansible_collections", galaxy["namespace"], galaxy["name"])
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in files:
        source = os.path.join(ROOT, name)
        if name and os.path.isfile(source):
            os.makedirs(os.path.dirname(os.path.join(tree, name)), exist_ok=True)
            shutil.copy2(source, os.path.join(tree, name))
    return tree, str(galaxy["version"])


def changelog():
    tmp = tempfile.mkdtemp(prefix="o365-changelog-")
    try:
        tree, version = collection_copy(tmp)
        proc = subprocess.run(["antsibull-changelog", "release", "--version", version, "--date", DATE], cwd=tree,
                              capture_output=True, text=True, check=False)
        if proc.returncode:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit("antsibull-changelog cannot build release %s (see above)" % version)
        with open(os.path.join(tree, "CHANGELOG.rst")) as handle:
            return handle.read(), version
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when CHANGELOG.rst is out of date")
    args = parser.parse_args()
    text, version = changelog()
    status = write_or_check(os.path.join(ROOT, "CHANGELOG.rst"), text,
                            "the fragments as release %s (scripts/gen_changelog.py)" % version, args.check)
    if status:
        print("regenerate: . scripts/env.sh && python scripts/gen_changelog.py")
    return status


if __name__ == "__main__":
    sys.exit(main())
