"""What `ansible-doc` shows for every module: the requirements section and the action group (issue 12)."""

import glob
import json
import os
import subprocess

# Action plugins that run on the controller, outside the action group.
CONTROLLER_ONLY = ("o365.smtp_oauth.entra_device_login",)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_every_module_documents_its_libraries_and_action_group():
    names = sorted("o365.smtp_oauth." + os.path.basename(p)[:-3]
                   for p in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py")))
    out = subprocess.run(["ansible-doc", "--json", "-t", "module"] + names, capture_output=True, text=True, check=True)
    docs = json.loads(out.stdout)
    assert sorted(docs) == names
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        version = [line.split(":", 1)[1].strip() for line in handle if line.startswith("version:")][0]
    for name, doc in docs.items():
        doc = doc["doc"]
        requirements = " ".join(doc.get("requirements") or [])
        libraries = ("msal", "requests") if name in CONTROLLER_ONLY else (
            "msal", "requests", "cryptography", "azure-identity")
        for library in libraries:
            assert library in requirements, (name, library)
        if name in CONTROLLER_ONLY:  # options of their own, none of the group's: module_defaults would break them
            assert "action_group" not in doc["attributes"] and doc["attributes"]["action"]["support"] == "full"
        else:
            assert doc["attributes"]["action_group"]["membership"] == ["o365.smtp_oauth.o365"], name
        assert "UNKNOWN" not in " ".join(doc["author"]), name
        added = tuple(int(x) for x in doc["version_added"].split("."))
        assert added <= tuple(int(x) for x in version.split(".")), (name, doc["version_added"], version)
