"""The relay ships the collection's module_utils the proxy runs as a list in roles/relay/vars/main.yml. Here the
list is packed as the role packs it (tar of those names), unpacked into an empty folder, and a Python that sees
only that folder, the proxy's files and the site-packages (msal, cryptography...) imports the proxy, every file
shipped and the credential kinds the proxy chooses at run time. A new import the list lacks fails here, not on
a relay host."""

import os
import subprocess
import sys
import tarfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MODULE_UTILS = os.path.join(ROOT, "plugins", "module_utils")
PACKAGE = "ansible_collections.o365.smtp_oauth.plugins.module_utils"


def shipped_names():
    with open(os.path.join(ROOT, "roles", "relay", "vars", "main.yml")) as handle:
        return yaml.safe_load(handle)["__relay_module_utils"]


def unpack_as_the_role_does(tmp_path):
    lib = tmp_path / "lib"
    target = lib / "ansible_collections" / "o365" / "smtp_oauth" / "plugins" / "module_utils"
    target.mkdir(parents=True)
    archive = tmp_path / "lib.tar"
    subprocess.run(["tar", "--create", "--file", str(archive), "--exclude=__pycache__", "--directory",
                    MODULE_UTILS] + shipped_names(), check=True)
    with tarfile.open(str(archive)) as tar:
        tar.extractall(str(target))
    return lib, target


def test_the_list_names_packages_whole_and_files_that_exist():
    names = shipped_names()
    for name in names:
        assert os.path.exists(os.path.join(MODULE_UTILS, name)), name
    # The token and SMTP code go as whole packages: a file added to them ships without editing the list.
    assert "_auth" in names and "_smtp" in names


def test_the_proxy_and_every_shipped_file_import_with_exactly_what_the_role_ships(tmp_path):
    lib, target = unpack_as_the_role_does(tmp_path)
    modules = []
    for folder, _dirs, files in os.walk(str(target)):
        for name in sorted(files):
            if name.endswith(".py") and name != "__init__.py":
                relative = os.path.relpath(os.path.join(folder, name[:-3]), str(target))
                modules.append(PACKAGE + "." + relative.replace(os.sep, "."))
    assert any(m.endswith("._auth.msal_credentials") for m in modules)
    site = [p for p in sys.path if p.endswith("site-packages")]
    code = "\n".join([
        "import importlib, sys",
        "sys.path[:] = %r + sys.path" % ([str(lib), os.path.join(ROOT, "roles", "relay", "files")] + site),
        "import o365_smtp_proxy",
        "for name in %r:" % modules,
        "    importlib.import_module(name)",
        # What a secret or certificate credential imports lazily when it asks for its first token.
        "importlib.import_module(%r).IdentityHttpClient().close()" % (PACKAGE + "._auth.msal_http"),
        "assert not [m for m in sys.modules if m.startswith('ansible.') or m == 'ansible'], 'ansible imported'",
        "print(len(%r), 'ok')" % modules,
    ])
    # -I: no PYTHONPATH (which points at this checkout) and no user site; -S: no site-packages but the venv's.
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=False,
                         cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(len(modules)), "ok"]
