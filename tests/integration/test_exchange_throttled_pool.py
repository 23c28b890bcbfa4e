"""The per-mailbox pool against an admin API that throttles like Exchange (429 + Retry-After when more calls are
in flight than it allows): the module body runs in this process over the emulator's real HTTPS server (the same
code ansible-playbook runs, see tests/benchmarks/bench_exchange_audit.py), each worker on its own HTTP session;
every throttled call is retried after Retry-After and the re-run still writes nothing."""

from benchmarks.bench_exchange_audit import Module, Tokens, access_params

from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.tasks import run_exchange_smtp_access


def test_rerun_through_a_throttling_admin_api_retries_and_writes_nothing(emulator, tenant):
    ex = tenant.exchange
    addresses = [ex.add_mailbox("pool%02d" % n)["PrimarySmtpAddress"] for n in range(12)]
    app = emulator.create_app("pool")
    params = access_params(app["client_id"], "classic", addresses, set(addresses[:3]))
    tokens = Tokens(emulator)
    first = Module(emulator, tokens, **params)
    first.result = run_exchange_smtp_access(first)
    assert first.result["changed"], first.result

    tenant.throttle.configure("exchange", latency=0.05, max_concurrent=2)
    mark = tenant.log.mark()
    again = Module(emulator, tokens, **params)
    again.result = run_exchange_smtp_access(again)
    entries = [e for e in tenant.log.since(mark) if e["part"] == "exchange"]
    assert not again.result["changed"] and not [e for e in entries if e["write"]]
    throttled = [e for e in entries if e["status"] == 429]
    assert throttled and tenant.throttle.peak("exchange") <= 2
    answered = [e["cmdlet"] for e in entries if e["status"] == 200]
    assert answered.count("Get-MailboxPermission") == len(addresses)  # every throttled one retried, once answered
    assert [m["full_access"] for m in again.result["mailboxes"]] == [True] * len(addresses)
