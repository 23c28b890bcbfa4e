"""The entra_* modules against a real Microsoft 365 tenant: run only with O365_REAL_TENANT=1.

Needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) of an app with
Application.ReadWrite.All and AppRoleAssignment.ReadWrite.All. Creates an app named o365-smtp-oauth-test-<random>
and deletes it at the end.
"""

import json
import os
import subprocess
import sys
import uuid

import pytest

pytestmark = [
    pytest.mark.real_tenant,
    pytest.mark.skipif(os.environ.get("O365_REAL_TENANT") != "1",
                       reason="real-tenant test: set O365_REAL_TENANT=1 and AZURE_TENANT_ID / AZURE_CLIENT_ID / "
                              "AZURE_CLIENT_SECRET to run it"),
]


def run(tmp_path, tasks, check=False):
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACKS_ENABLED="",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    args = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook)] + (["--check"] if check else [])
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)
    data = json.loads(proc.stdout)
    return [task["hosts"]["localhost"] for task in data["plays"][0]["tasks"]]


def test_app_lifecycle_on_a_real_tenant(tmp_path):
    name = "o365-smtp-oauth-test-%s" % uuid.uuid4().hex[:8]
    app = {"o365.smtp_oauth.entra_app": {"unique_name": name, "authorization_model": "classic",
                                         "admin_consent": True}}
    try:
        assert run(tmp_path, [app], check=True)[0]["changed"]
        [created] = run(tmp_path, [app])
        assert created["changed"] and created["service_principal_id"], created
        assert not run(tmp_path, [app], check=True)[0]["changed"]
        assert not run(tmp_path, [app])[0]["changed"]
        [report] = run(tmp_path, [{"o365.smtp_oauth.entra_app_info": {"unique_name": name}}])
        assert report["app"]["consented_permissions"][0]["permission"] == "SMTP.SendAsApp"
    finally:
        run(tmp_path, [{"o365.smtp_oauth.entra_app": {"unique_name": name, "state": "absent"}}])
