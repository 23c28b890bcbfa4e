"""The provisioning half of the example playbook under each injected fault.

Each run must end in the declared state or in a diagnosed failure (a message with a fix, no traceback); a clean
run afterwards converges; and whatever happened, the tenant never holds a duplicate: one app per uniqueName, one
service principal per app, one Exchange registration, one federated credential per name.
"""

import os

import pytest

from helpers.playbook import ROOT

PLAYBOOK = os.path.join(ROOT, "playbooks", "smtp_oauth_app.yml")
UNIQUE = "smtp-oauth-demo"

SCENARIOS = {
    "graph 429 with Retry-After": lambda t: t.faults.add("graph", kind="status", status=429, retry_after=1, times=3),
    "graph 503": lambda t: t.faults.add("graph", kind="status", status=503, times=2),
    "identity 503": lambda t: t.faults.add("identity", kind="status", status=503, times=1),
    "app upsert committed, answer lost": lambda t: t.faults.add(
        "graph", match="PATCH /v1.0/applications(uniqueName=", kind="drop_after_commit"),
    "federated credential committed, answer lost": lambda t: t.faults.add(
        "graph", match="federatedIdentityCredentials", kind="drop_after_commit"),
    "Exchange registration committed, answer lost": lambda t: t.faults.add(
        "exchange", match="New-ServicePrincipal", kind="drop_after_commit"),
    "Exchange throttling": lambda t: t.faults.add("exchange", kind="status", status=429, retry_after=1, times=2),
    "Graph replication lag": lambda t: setattr(t, "graph_replication_lag", 2.0),
    "new credential replication lag": lambda t: setattr(t, "credential_replication_lag", 2.0),
    "Exchange propagation delay": lambda t: setattr(t.exchange, "propagation_delay", 2.0),
}


def _assert_no_duplicates(tenant):
    apps = [a for a in tenant.applications.values() if a.get("uniqueName") == UNIQUE]
    assert len(apps) <= 1, "duplicate applications: %s" % [a["id"] for a in apps]
    if not apps:
        return
    app = apps[0]
    sps = [s for s in tenant.service_principals.values() if s.get("appId") == app["appId"]]
    assert len(sps) <= 1, "duplicate service principals"
    names = [f.get("name") for f in app.get("federatedIdentityCredentials") or []]
    assert len(names) == len(set(names)), "duplicate federated credentials: %s" % names
    registered = [s for s in tenant.exchange.service_principals.values() if s.get("AppId") == app["appId"]]
    assert len(registered) <= 1, "duplicate Exchange registrations"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_provisioning_under_fault(scenario, emulator, tenant, playbook, tmp_path):
    with open(PLAYBOOK) as handle:
        text = handle.read()
    extra = {"demo_workdir": str(tmp_path / "work"), "send_test_mail": False}
    SCENARIOS[scenario](tenant)

    run = playbook(text, extra_vars=extra)
    assert "Traceback" not in run.output
    if run.rc != 0:
        failed = [r for r in run.results if r.get("failed")]
        assert failed, run.output[-3000:]
        msg = failed[0].get("msg", "")
        assert "Fix:" in msg or failed[0].get("error_fix"), "undiagnosed failure: %s" % msg
    _assert_no_duplicates(tenant)

    # Faults gone: the next run converges (when the faulty one did not) and writes nothing once converged.
    tenant.faults.clear()
    tenant.graph_replication_lag = tenant.credential_replication_lag = 0.0
    tenant.exchange.propagation_delay = 0.0
    if run.rc != 0:
        converge = playbook(text, extra_vars=extra)
        assert converge.rc == 0, converge.output[-3000:]
        _assert_no_duplicates(tenant)
    mark = tenant.log.mark()
    again = playbook(text, extra_vars=extra)
    assert again.rc == 0, again.output[-3000:]
    assert not [r.get("_task") for r in again.results if r.get("changed")]
    assert tenant.log.writes(since=mark) == []
    apps = [a for a in tenant.applications.values() if a.get("uniqueName") == UNIQUE]
    assert len(apps) == 1
