#!/usr/bin/env bash
# The Python and ansible-core range the README promises, proven in two parts that run side by side (one mostly
# waits on the network while the other uses the CPU):
#   host (Debian 12, Python 3.11): the integration tests marked core_range (tests/integration/conftest.py: each
#     module through ansible-playbook, what the controller reads of a result, check and diff mode, no_log...) in
#     a venv with the OLDEST supported ansible-core (tests/constraints-ansible-2.17.txt, scripts/ansible-venv.sh);
#   Debian 13 container (podman, Python 3.13): a clean copy of this checkout, the README's first command as a
#     user runs it (scripts/bootstrap.sh and `make demo`, pinned ansible-core), then all unit tests and the
#     core_range integration tests (-n 2) in a venv with the NEWEST ansible-core
#     (tests/constraints-ansible-2.21.txt), kept between runs in .build/trixie (the demo's venv is built from
#     scratch every time: that is what it proves).
# The other integration tests (faults, contract walks, retries), the emulator tests, sanity and lint run once, on
# the pinned ansible-core: they test the collection's own Python, the same under any ansible-core. Each part
# prints its time; the stage prints its total.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. scripts/env.sh
started=$SECONDS

missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "45-trixie: installing ${missing[*]} (apt)" >&2
  [ "$(id -u)" = 0 ] || { echo "45-trixie: FAILED: need root to install ${missing[*]}" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null; } \
    || { echo "45-trixie: FAILED: cannot install ${missing[*]}" >&2; exit 1; }
fi

work=$(mktemp -d /tmp/o365-trixie.XXXXXX)
oldest_pid=""
cleanup() {
  [ -n "$oldest_pid" ] && kill "$oldest_pid" 2>/dev/null && wait "$oldest_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Host part: the oldest ansible-core, in the background.
oldest() {
  local t0=$SECONDS venv
  venv=$(bash scripts/ansible-venv.sh 2.17 "$root/.build/ansible-2.17" python3)
  echo "oldest: ansible-core $("$venv/bin/python" -c 'import ansible.release as r; print(r.__version__)')," \
    "$("$venv/bin/python" -V), venv ready in $((SECONDS - t0)) s"
  O365_TEST_VENV=$venv PATH="$venv/bin:$PATH" \
    "$venv/bin/python" -m pytest -n 2 -p no:cacheprovider -q -m core_range tests/integration
  echo "oldest: core_range integration tests on ansible-core 2.17 in $((SECONDS - t0)) s"
}
oldest > "$work/oldest.log" 2>&1 &
oldest_pid=$!

# Container part. The image: Debian 13 from the archive the relay image comes from (scripts/debian-image.sh),
# with what the README asks of a machine (python3, its venv module, make).
t0=$SECONDS
# Captured and checked before it is evaluated (see 40-relay.sh).
image=$(bash scripts/debian-image.sh trixie localhost/o365-smtp-oauth-py TRIXIE_IMAGE python3 python3-venv make ca-certificates) \
  || { echo "45-trixie: FAILED: the Debian 13 image could not be built (above)" >&2; exit 1; }
eval "$image"
[ -n "${TRIXIE_IMAGE:-}" ] || { echo "45-trixie: FAILED: scripts/debian-image.sh named no image: $image" >&2; exit 1; }
echo "45-trixie: image $TRIXIE_IMAGE ready in $((SECONDS - t0)) s"

# A clean copy: the files git knows (tracked, plus untracked ones not ignored), no .venv, no .build.
mkdir -p "$work/src"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -xf - -C "$work/src"

# pip inside sees the host's pip configuration and trust anchors (a proxy or mirror the host uses), nothing else.
# Local folders that configuration names are not mounted: pip's "Location ... is ignored" warnings are dropped.
mkdir -p "$root/.build/trixie"
run=(podman run --rm --network host -v "$work/src:/src" -v "$root/.build/trixie:/cache" -w /src)
for path in /etc/pip.conf /etc/xdg/pip "$HOME/.config/pip" /etc/ssl/certs/ca-certificates.crt; do
  [ -e "$path" ] && run+=(-v "$path:$path:ro")
done
while IFS= read -r name; do run+=(-e "$name"); done < <(env | sed -n 's/^\(PIP_[A-Z_]*\)=.*/\1/p')

t0=$SECONDS
container_rc=0
# shellcheck disable=SC2016  # expanded inside the container
"${run[@]}" "$TRIXIE_IMAGE" bash -euo pipefail -c '
  t0=$SECONDS
  echo "trixie: $(. /etc/os-release; echo "$PRETTY_NAME"), $(python3 -V)"
  make demo > /tmp/demo.log 2>&1 || { cat /tmp/demo.log; exit 1; }
  grep -E "^localhost +:" /tmp/demo.log
  echo "trixie: README bootstrap + make demo (pinned ansible-core $(.venv/bin/ansible --version | sed -n "1s/.*core \([0-9.]*\).*/\1/p")) in $((SECONDS - t0)) s"
  t1=$SECONDS
  venv=$(bash scripts/ansible-venv.sh 2.21 /cache/ansible-2.21 python3)
  echo "newest: ansible-core $("$venv/bin/python" -c "import ansible.release as r; print(r.__version__)"), venv ready in $((SECONDS - t1)) s"
  . scripts/env.sh
  O365_TEST_VENV=$venv PATH="$venv/bin:$PATH" \
    "$venv/bin/python" -m pytest -n 2 -p no:cacheprovider -q tests/unit
  O365_TEST_VENV=$venv PATH="$venv/bin:$PATH" \
    "$venv/bin/python" -m pytest -n 2 -p no:cacheprovider -q -m core_range tests/integration
  echo "newest: unit tests and core_range integration tests on ansible-core 2.21 in $((SECONDS - t1)) s"
' 2>&1 | sed -e '/^WARNING: Location .* is ignored/d' -e 's/^/[trixie] /' || container_rc=$?
echo "45-trixie: container part: $((SECONDS - t0)) s"

oldest_rc=0
wait "$oldest_pid" || oldest_rc=$?
oldest_pid=""
sed -e '/^WARNING: Location .* is ignored/d' -e 's/^/[oldest] /' "$work/oldest.log"
[ "$container_rc" = 0 ] || echo "45-trixie: FAILED: Debian 13 container (Python 3.13: demo, or the newest ansible-core)" >&2
[ "$oldest_rc" = 0 ] || echo "45-trixie: FAILED: the integration tests on the oldest ansible-core (host)" >&2
[ "$container_rc" = 0 ] && [ "$oldest_rc" = 0 ] || exit 1
echo "45-trixie: passed in $((SECONDS - started)) s"
