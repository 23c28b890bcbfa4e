"""The Exchange admin API's wire habits, seen where users see them: exchange_smtp_access through ansible-playbook
against the emulated tenant (emulator.exchange_wire). A refusal under a false gzip claim gives the role advice at
once; errors in every shape keep re-runs idempotent; a failed write inside an HTTP 200 fails the task; a Retry-After
longer than the retry budget is said, not pretended.

Everything real: ansible-playbook, msal with the seeded admin app's secret, the emulator's HTTPS server, Graph and
Exchange admin API.
"""

import time

import pytest

from helpers.playbook import four_runs, results

DOMAIN = "contoso.onmicrosoft.com"


def box(local):
    return "%s@%s" % (local, DOMAIN)


def access_task(app_id, **args):
    return {"name": "access", "o365.smtp_oauth.exchange_smtp_access": dict(app_id=app_id, **args)}


def sending_app(emulator, tenant, name):
    [created] = results(emulator, {"name": "app", "o365.smtp_oauth.entra_app": {"unique_name": name}})
    assert created["changed"], created
    return created["app_id"]


def calls(tenant, mark, cmdlet):
    return [e for e in tenant.log.since(mark) if e.get("part") == "exchange" and e.get("cmdlet") == cmdlet]


@pytest.mark.parametrize("refused, body", [("New-ManagementScope", "plain"), ("every cmdlet", "empty")])
def test_a_403_under_a_false_gzip_claim_gives_the_role_advice_without_retrying(emulator, tenant, refused, body):
    app_id = sending_app(emulator, tenant, "relay-403-" + body)
    tenant.exchange.forbidden_body = body
    if refused == "every cmdlet":
        tenant.exchange.admin_apps.clear()
        refused = "Get-ManagementRole"  # the first call the task makes (rbac: does the SMTP role exist)
    else:
        tenant.exchange.refused_cmdlets = {refused}
    mark, started = tenant.log.mark(), time.monotonic()
    [result] = results(emulator, access_task(app_id, mailboxes=[{"address": box("reports")}]))
    took = time.monotonic() - started
    assert result["failed"] and result["error_status"] == 403, result
    assert "Exchange Administrator" in result["msg"] and refused in result["msg"], result["msg"]
    assert "DNS" not in result["msg"] and "Traceback" not in result["msg"]
    assert len(calls(tenant, mark, refused)) == 1, "a refusal is not retried"
    assert took < 30, "no retry loop (the old client retried ~15 s, then blamed DNS)"


@pytest.mark.parametrize("shape", ["internal_exception", "details_string", "adminapi_errors_200"])
def test_reruns_change_nothing_whatever_shape_exchange_errors_come_in(emulator, tenant, shape):
    """Not found (a new service principal, an absent scope) and its handling key on the exception type, which
    these shapes carry elsewhere than error.details[] (or inside an HTTP 200)."""
    tenant.exchange.error_shape = shape
    app_id = sending_app(emulator, tenant, "relay-shape-" + shape.replace("_", "-"))
    task = access_task(app_id, mailboxes=[{"address": box("noreply")}, {"address": box("alerts"), "send_as": True}])
    runs = [result for result, output in four_runs(emulator, tenant, task, "exchange")]
    assert not [r for r in runs if r.get("failed")], runs
    assert runs[1]["changed"] and not runs[3]["changed"]
    assert tenant.exchange.authorize_smtp({"appid": app_id, "roles": []}, box("noreply")) is None


def test_a_write_that_failed_inside_http_200_fails_the_task(emulator, tenant):
    tenant.exchange.error_shape = "adminapi_errors_200"
    app_id = sending_app(emulator, tenant, "relay-in-200")
    other = emulator.create_app("other")
    other = tenant.exchange.register_sp(other["client_id"], other["sp"]["id"], "other")
    tenant.exchange.add_role_assignment("taken", "Application SMTP.SendAsApp", other)
    [result] = results(emulator, access_task(app_id, scope_name="taken", mailboxes=[{"address": box("noreply")}]))
    assert result["failed"] and "New-ManagementRoleAssignment" in result["msg"], result
    assert "nothing is counted as done" in result["msg"] and "Traceback" not in result["msg"]
    assert tenant.exchange.authorize_smtp({"appid": app_id, "roles": []}, box("noreply"))[1] == "5.7.3"


def test_a_retry_after_longer_than_the_budget_is_said_not_pretended(emulator, tenant):
    app_id = sending_app(emulator, tenant, "relay-retry-after")
    tenant.faults.add("exchange", match="Get-TransportConfig", kind="status", status=429, retry_after=600, times=None)
    mark = tenant.log.mark()
    [result] = results(emulator, access_task(app_id, mailboxes=[{"address": box("reports")}]))
    tenant.faults.clear()
    assert result["failed"] and "asked to wait 600 s" in result["msg"], result
    assert "not repeated" in result["msg"] and "waits it asked for" not in result["msg"]
    assert len(calls(tenant, mark, "Get-TransportConfig")) == 1
