"""The emulated admin API at scale: the reads that follow the grants (Get-Recipient -RecipientPreviewFilter,
Get-CASMailbox -Filter, Get-RecipientPermission without -Identity, -ResultSize as the cmdlet reference documents it)
and the latency / throttling model (429 + Retry-After, a concurrency limit, a request budget), over the emulator's
real HTTPS server."""

import threading

from emulator.throttle import Throttle, simulated_wall
# admin is a pytest fixture: imported to be used by name in test signatures.
from emulator.test_exchange import admin, box, invoke  # noqa: F401  # pylint: disable=unused-import


def grant(emulator, tenant, name="scale"):
    made = emulator.create_app(name)
    sp = tenant.exchange.register_sp(made["client_id"], made["sp"]["id"], name)
    return made, sp


def test_recipient_preview_filter_lists_exactly_a_scopes_members(emulator, tenant, admin):
    ex = tenant.exchange
    scope = ex.add_scope("s", "PrimarySmtpAddress -eq '%s' -or MemberOfGroup -eq 'smtp-senders'" % box("printer"))
    status, body = invoke(emulator, admin, "Get-Recipient", {"RecipientPreviewFilter": scope["RecipientFilter"],
                                                             "ResultSize": "Unlimited"})
    assert status == 200, body
    assert sorted(r["PrimarySmtpAddress"] for r in body["value"]) == [box("alerts"), box("printer"), box("reports")]
    assert all(ex.in_scope(scope, ex.find_mailbox(r["PrimarySmtpAddress"])) for r in body["value"])
    status, body = invoke(emulator, admin, "Get-Recipient", {"RecipientPreviewFilter": "Nonsense -eq 'x'"})
    assert status == 400 and "RecipientPreviewFilter" in body["error"]["details"][0]["message"]


def test_cas_mailbox_filter_over_addresses_and_result_size(emulator, tenant, admin):
    opath = "EmailAddresses -eq '%s' -or EmailAddresses -eq '%s'" % (box("no-reply"), box("sales"))
    status, body = invoke(emulator, admin, "Get-CASMailbox", {"Filter": opath, "ResultSize": "Unlimited"})
    assert status == 200 and sorted(r["PrimarySmtpAddress"] for r in body["value"]) == [box("noreply"), box("sales")]
    assert "smtp:" + box("no-reply") in [a.lower() for a in body["value"][0]["EmailAddresses"]]
    for n in range(1100):
        tenant.exchange.add_mailbox("bulk%04d" % n)
    tenant.exchange.page_size = 1000
    status, body = invoke(emulator, admin, "Get-CASMailbox")  # the reference: 1000 unless told
    assert status == 200 and len(body["value"]) == 1000 and "@odata.nextLink" not in body
    status, body = invoke(emulator, admin, "Get-CASMailbox", {"ResultSize": 3})
    assert len(body["value"]) == 3
    status, body = invoke(emulator, admin, "Get-CASMailbox", {"ResultSize": "Unlimited"})
    assert len(body["value"]) == 1000 and "@odata.nextLink" in body
    status, body = invoke(emulator, admin, "Get-CASMailbox", {"ResultSize": "lots"})
    assert status == 400 and "ParameterBinding" in body["error"]["details"][0]["message"]


def test_recipient_permission_of_one_trustee_tenant_wide(emulator, tenant, admin):
    made, sp = grant(emulator, tenant)
    other, other_sp = grant(emulator, tenant, "other")
    for local in ("sales", "alerts"):
        tenant.exchange.add_recipient_permission(tenant.exchange.find_mailbox(box(local)), sp)
    tenant.exchange.add_recipient_permission(tenant.exchange.find_mailbox(box("printer")), other_sp)
    status, body = invoke(emulator, admin, "Get-RecipientPermission", {"Trustee": made["client_id"],
                                                                       "ResultSize": "Unlimited"})
    assert status == 200 and sorted(r["Identity"] for r in body["value"]) == ["alerts", "sales"]
    mark = tenant.log.mark()
    status, body = invoke(emulator, admin, "Get-RecipientPermission", {})
    assert status == 200 and len(body["value"]) == 3
    assert tenant.log.since(mark)[0]["parameter_set"] is not None


def test_throttle_latency_concurrency_and_budget(emulator, tenant, admin):
    tenant.throttle.configure("exchange", latency=0.3, max_concurrent=2)
    answers = []

    def call():
        answers.append(invoke(emulator, admin, "Get-TransportConfig"))
    threads = [threading.Thread(target=call) for unused in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, unused in answers)
    assert statuses.count(200) >= 1 and 429 in statuses and tenant.throttle.peak("exchange") <= 2
    assert tenant.throttle.throttled("exchange") == statuses.count(429)

    tenant.throttle.clear()
    tenant.throttle.configure("exchange", budget=2, window=30)
    first, second, third = [invoke(emulator, admin, "Get-TransportConfig") for unused in range(3)]
    assert first[0] == second[0] == 200 and third[0] == 429
    assert third[1]["error"]["code"] == "TooManyRequests"
    logged = tenant.log.entries(part="exchange", status=429)
    assert logged and logged[-1]["fault"] == "throttled"


def test_budget_retry_after_counts_down_on_the_clock():
    now = [100.0]
    throttle = Throttle(clock=lambda: now[0], sleep=lambda seconds: None)
    throttle.configure("exchange", budget=2, window=10)
    assert throttle.admit("exchange") is None and throttle.admit("exchange") is None
    throttle.done("exchange"), throttle.done("exchange")
    assert throttle.admit("exchange") == 10
    now[0] += 7.5
    assert throttle.admit("exchange") == 3
    now[0] += 2.5
    assert throttle.admit("exchange") is None


def test_simulated_wall_keeps_the_real_overlap():
    sequential = [{"started": t, "time": t + 0.01} for t in (0.0, 0.02, 0.04)]
    assert simulated_wall(sequential, 0.3) == 0.3 * 3
    parallel = [{"started": 0.0, "time": 0.05}, {"started": 0.001, "time": 0.05}, {"started": 0.06, "time": 0.07}]
    assert abs(simulated_wall(parallel, 0.3) - 0.6) < 1e-9
