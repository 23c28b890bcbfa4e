"""_token_cache and TokenProvider's file cache: modes, atomic writes, never a secret, and two processes at once.

The cross-process tests use a credential that counts its acquisitions in a file instead of calling the
emulator, to hold the race window open on purpose; test_auth_msal.py and
tests/integration/test_token_cache_play.py count the emulator's token requests instead.
"""

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.token_cache import FileTokenCache, cache_key


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_folder_0700_and_file_0600_even_with_a_loose_umask(tmp_path):
    old = os.umask(0o000)
    try:
        cache = FileTokenCache(str(tmp_path / "a" / "cache"))
        cache.store("k1", "tok", 2000000000, info={"scope": "s"})
    finally:
        os.umask(old)
    assert mode(cache.directory) == 0o700
    files = os.listdir(cache.directory)
    assert "k1.json" in files and not [f for f in files if f.startswith(".tmp-")]
    for name in files:
        assert mode(os.path.join(cache.directory, name)) == 0o600
    assert cache.load("k1")["token"] == "tok" and cache.load("k1")["expires_on"] == 2000000000


@pytest.mark.parametrize("loose", [0o755, 0o1777, 0o710])
def test_an_existing_folder_others_can_enter_is_refused_and_left_as_it_is(tmp_path, loose):
    # token_cache_dir: /tmp (as root) must neither close /tmp to everyone else nor put tokens where others look.
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(str(folder), loose)
    with pytest.raises(ConfigError) as info:
        FileTokenCache(str(folder)).store("k", "t", 1)
    assert info.value.option == "token_cache_dir" and "other users" in str(info.value)
    assert "0700" in info.value.fix
    assert mode(str(folder)) == loose and os.listdir(str(folder)) == []


def test_an_existing_private_folder_is_used(tmp_path):
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    FileTokenCache(str(folder)).store("k", "t", 1)
    assert mode(str(folder)) == 0o700 and FileTokenCache(str(folder)).load("k")["token"] == "t"


def test_a_file_where_the_folder_should_be_names_the_option(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ConfigError) as info:
        FileTokenCache(str(target)).load("k")
    assert info.value.option == "token_cache_dir"
    with pytest.raises(ConfigError):
        FileTokenCache("  ")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a folder owned by another user")
def test_a_folder_of_another_user_is_refused(tmp_path):
    folder = tmp_path / "theirs"
    folder.mkdir()
    os.chown(str(folder), 65534, 65534)
    with pytest.raises(ConfigError) as info:
        FileTokenCache(str(folder)).load("k")
    assert "another user" in str(info.value)


def test_unreadable_or_foreign_entries_are_misses(tmp_path):
    cache = FileTokenCache(str(tmp_path))
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "old.json").write_text(json.dumps({"format": 0, "token": "t"}))
    assert cache.load("bad") is None and cache.load("old") is None and cache.load("missing") is None
    cache.store("x", "t", 5)
    cache.remove("x")
    assert cache.load("x") is None


def test_cache_key_is_stable_and_hides_its_parts():
    key = cache_key({"tenant": "contoso.onmicrosoft.com", "scope": "https://outlook.office365.com/.default"})
    assert key == cache_key({"scope": "https://outlook.office365.com/.default", "tenant": "contoso.onmicrosoft.com"})
    assert len(key) == 64 and "contoso" not in key


WORKER = textwrap.dedent(r"""
    import os, sys, time
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.credential import AccessToken, Credential
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.provider import TokenProvider

    counter, cache_dir, start = sys.argv[1], sys.argv[2], float(sys.argv[3])

    class CountingCredential(Credential):
        kind = "client_secret"
        def _acquire(self, scope):
            with open(counter, "a") as handle:
                handle.write("%d\n" % os.getpid())
            time.sleep(0.3)  # a slow token endpoint: the window in which a second task would also ask
            return AccessToken("token-from-%d" % os.getpid(), int(time.time()) + 3600)

    provider = TokenProvider(CountingCredential(tenant_id="t.example", client_id="c"), cache_dir=cache_dir)
    while time.time() < start:
        time.sleep(0.005)
    print(provider.get_token("https://outlook.office365.com/.default"))
""")


def test_processes_started_together_make_one_request_and_share_the_token(tmp_path):
    import time
    counter = tmp_path / "acquisitions"
    start = time.time() + 1.0
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(counter), str(tmp_path / "cache"), str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _worker in range(4)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _out, err in outputs]
    tokens = {out.strip() for out, _err in outputs}
    assert len(tokens) == 1
    assert len(counter.read_text().split()) == 1


CHURN = textwrap.dedent(r"""
    import json, sys
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.token_cache import FileTokenCache
    cache = FileTokenCache(sys.argv[1])
    me = sys.argv[2]
    for i in range(300):
        cache.store("same", "%s-%d-" % (me, i) + "x" * 4000, 2000000000 + i)
        entry = cache.load("same")
        assert entry is not None and entry["token"].endswith("x" * 4000), entry
    print("ok")
""")


def test_two_writers_never_leave_a_torn_or_missing_file(tmp_path):
    folder = str(tmp_path / "c")
    procs = [subprocess.Popen([sys.executable, "-c", CHURN, folder, name], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [out.strip() for out, _err in outputs] == ["ok", "ok"], [err for _out, err in outputs]
    assert sorted(os.listdir(folder)) == ["same.json"]


def test_a_cache_that_cannot_be_written_does_not_fail_the_task(tmp_path):
    import time

    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.credential import AccessToken, Credential
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.provider import TokenProvider

    class OneToken(Credential):
        kind = "client_secret"

        def _acquire(self, scope):
            return AccessToken("fresh-token", int(time.time()) + 3600)

    provider = TokenProvider(OneToken(tenant_id="t.example", client_id="c"), cache_dir=str(tmp_path / "c"))
    (tmp_path / "c").mkdir(mode=0o700)
    blocker = tmp_path / "c" / (provider.cache_key("s") + ".json")
    blocker.mkdir()  # a folder where the cache file should go: the rename fails
    assert provider.get_token("s") == "fresh-token"
    assert len(provider.cache_errors) == 1 and "token_cache_dir" in provider.cache_errors[0]
    assert not [f for f in os.listdir(str(tmp_path / "c")) if f.startswith(".tmp-")]


def test_a_lock_file_that_cannot_be_made_warns_and_the_cache_still_serves(tmp_path):
    import time

    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.credential import AccessToken, Credential
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.provider import TokenProvider

    class Counted(Credential):
        kind = "client_secret"
        calls = 0

        def _acquire(self, scope):
            Counted.calls += 1
            return AccessToken("token-%d" % Counted.calls, int(time.time()) + 3600)

    folder = tmp_path / "c"
    first = TokenProvider(Counted(tenant_id="t.example", client_id="c"), cache_dir=str(folder))
    folder.mkdir(mode=0o700)
    (folder / (first.cache_key("s") + ".lock")).mkdir()  # the lock file cannot be opened (root or not)
    assert first.get_token("s") == "token-1"
    assert len(first.cache_errors) == 1 and "lock file" in first.cache_errors[0], first.cache_errors
    assert first.cache_errors[0].startswith("token_cache_dir: ") and str(folder) in first.cache_errors[0]
    second = TokenProvider(Counted(tenant_id="t.example", client_id="c"), cache_dir=str(folder))
    assert second.get_token("s") == "token-1" and Counted.calls == 1  # read from the file, unlocked
