"""A play of 20 tasks with token_cache_dir asks the identity platform once per API (Graph, Exchange), not once per
task; the cache files are private and hold no secret. The emulator's request log counts the token requests."""

import os
import stat

from helpers.playbook import run_playbook


def tasks(count):
    out = []
    for index in range(count):
        if index % 2:
            out.append({"name": "exchange %d" % index, "o365.smtp_oauth.exchange_smtp_access_info": {}})
        else:
            out.append({"name": "entra %d" % index,
                        "o365.smtp_oauth.entra_app_info": {"unique_name": "o365-smtp-oauth-admin"}})
    return out


def token_requests(tenant, mark):
    return [e for e in tenant.log.since(mark) if e.get("part") == "identity" and (e.get("path") or "").endswith("/token")]


def test_twenty_tasks_one_token_request_per_api_with_the_cache(emulator, tenant, tmp_path):
    cache = tmp_path / "cache"
    mark = tenant.log.mark()
    run = run_playbook(emulator, tasks(20), env={"O365_TOKEN_CACHE_DIR": str(cache)})
    assert run.rc == 0 and len(run.results) == 20, run.output[-2000:]
    assert len(token_requests(tenant, mark)) == 2  # one Graph token, one Exchange token, shared by the 20 tasks
    files = [os.path.join(root, name) for root, _dirs, names in os.walk(str(cache)) for name in names]
    assert files and all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)
    secret = emulator.env()["AZURE_CLIENT_SECRET"]
    assert not any(secret in open(f, errors="replace").read() for f in files)


def test_without_the_cache_each_task_asks_for_its_own_token(emulator, tenant):
    mark = tenant.log.mark()
    run = run_playbook(emulator, tasks(4), env={"O365_TOKEN_CACHE_DIR": None})
    assert run.rc == 0, run.output[-2000:]
    assert len(token_requests(tenant, mark)) == 4


def test_a_cache_that_cannot_be_written_warns_naming_token_cache_dir_and_the_tasks_succeed(emulator, tenant, tmp_path):
    from emulator import smtp_server

    mailbox = "app@contoso.onmicrosoft.com"
    cache = tmp_path / "cache"
    play = [{"name": "entra", "o365.smtp_oauth.entra_app_info": {"unique_name": "o365-smtp-oauth-admin"}},
            {"name": "send", "o365.smtp_oauth.send_mail": {"sender": mailbox, "to": ["bob@example.com"],
                                                           "subject": "cache", "body": "b"}}]
    with smtp_server.clean_endpoint(emulator, allow=[(emulator.admin.client_id, mailbox)]) as smtp:
        env = {"O365_TOKEN_CACHE_DIR": str(cache), "O365_SMTP_HOST": smtp.host, "O365_SMTP_PORT": str(smtp.port)}
        first = run_playbook(emulator, play, env=env)
        warned = [w for r in first.results for w in r.get("warnings", []) if "token_cache_dir" in w]
        assert first.rc == 0 and not warned, first.output[-2000:]
        # Root writes anywhere, so a permission bit proves nothing here: a folder where each token file goes
        # makes every write fail (the rename over it), whoever runs the test.
        stored = sorted(cache.glob("*.json"))
        assert len(stored) == 2  # the Graph token and the Exchange token
        for path in stored:
            path.unlink()
            path.mkdir()
        mark = tenant.log.mark()
        second = run_playbook(emulator, play, env=env)
        assert second.rc == 0, second.output[-2000:]
        assert len(smtp.messages) == 2
    assert len(token_requests(tenant, mark)) == 2  # nothing cached to reuse: each task asked
    for result in second.results:
        assert not result.get("failed"), result
        warnings = [w for w in result.get("warnings", []) if "token_cache_dir" in w]
        assert len(warnings) == 1 and str(cache) in warnings[0], result.get("warnings")
    secret = emulator.env()["AZURE_CLIENT_SECRET"]
    assert secret not in second.output


def test_a_folder_others_can_enter_fails_naming_token_cache_dir_and_keeps_its_mode(emulator, tenant, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(str(shared), 0o1777)  # like /tmp
    mark = tenant.log.mark()
    run = run_playbook(emulator, tasks(1), env={"O365_TOKEN_CACHE_DIR": str(shared)})
    [result] = run.results
    assert run.rc != 0 and result.get("failed"), run.output[-2000:]
    assert "token_cache_dir" in result["msg"] and "other users" in result["msg"], result["msg"]
    assert "Traceback" not in run.output
    assert stat.S_IMODE(os.stat(str(shared)).st_mode) == 0o1777 and os.listdir(str(shared)) == []
    assert token_requests(tenant, mark) == []  # refused before any request
