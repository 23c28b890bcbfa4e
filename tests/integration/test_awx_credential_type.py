"""The AWX / Automation Platform credential type (extensions/awx) works as AWX applies it (issue 12).

AWX renders each injector with Jinja from the credential's inputs, writes `file` templates to private files
(`tower.filename.<name>`) and sets `env` for the job. Here the same rendering, then a real ansible-playbook run
against the emulated tenant with nothing but that environment, once with a secret and once with a certificate.
"""

import os

import jinja2
import pytest
import yaml

from helpers.playbook import ROOT, run_playbook

AWX = os.path.join(ROOT, "extensions", "awx")


def load(name):
    with open(os.path.join(AWX, name)) as handle:
        return yaml.safe_load(handle)


def render(inputs, tmp_path):
    injectors = load("credential_type_injectors.yml")
    filenames = {}
    for key, template in (injectors.get("file") or {}).items():
        path = tmp_path / key.split(".", 1)[1]
        path.write_text(jinja2.Template(template).render(**inputs))
        path.chmod(0o600)
        filenames[key.split(".", 1)[1]] = str(path)
    context = dict(inputs, tower={"filename": filenames})
    return dict((name, jinja2.Template(value).render(**context)) for name, value in injectors["env"].items())


def test_inputs_and_injectors_agree():
    inputs = load("credential_type_inputs.yml")
    ids = {field["id"] for field in inputs["fields"]}
    assert set(inputs["required"]) <= ids
    injectors = load("credential_type_injectors.yml")
    used = " ".join(list(injectors["env"].values()) + list((injectors.get("file") or {}).values()))
    assert ids == {i for i in ids if i in used}, "every input is injected somewhere"
    assert all(f.get("secret") for f in inputs["fields"] if f["id"] in ("client_secret", "certificate"))


@pytest.mark.parametrize("kind", ["secret", "certificate"])
def test_a_job_with_only_the_injected_environment_authenticates(emulator, tenant, tmp_path, kind):
    with open(emulator.admin.certificate_path) as handle:
        pem = handle.read()
    inputs = {"tenant_id": emulator.tenant.tenant_id, "client_id": emulator.admin.client_id, "cloud": "public",
              "client_secret": emulator.admin.client_secret if kind == "secret" else "",
              "certificate": pem if kind == "certificate" else ""}
    env = render(inputs, tmp_path)
    assert (env["AZURE_CLIENT_CERTIFICATE_PATH"] != "") == (kind == "certificate")
    run = run_playbook(emulator, [{"name": "info", "o365.smtp_oauth.entra_app_info": {"unique_name": "nothing"}}],
                       credential="none", env=env)
    assert run.rc == 0, run.output[-3000:]
    assert run.task("info")["exists"] is False
    assert emulator.admin.client_secret not in run.output
