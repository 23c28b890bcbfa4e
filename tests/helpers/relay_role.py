"""The relay role's templates rendered with Ansible's own templating and the role's defaults and vars, as the
role renders them (tests/unit/relay/test_templates.py, tests/benchmarks/bench_relay.py)."""

import importlib.util
import json
import os

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles", "relay")
NETWORKS_SCRIPT = os.path.join(ROLE, "files", "relay_networks.py")


def load_file(path, name):
    """A Python file of the role (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NETWORKS = load_file(NETWORKS_SCRIPT, "relay_networks")


def role_vars(**overrides):
    values = {}
    for name in ("defaults/main.yml", "vars/main.yml"):
        with open(os.path.join(ROLE, name)) as handle:
            # Role files are trusted templates in Ansible too (a value may refer to another variable).
            values.update((k, trust_as_template(v) if isinstance(v, str) else v)
                          for k, v in yaml.safe_load(handle).items())
    values.update(relay_mailbox="relay@contoso.com", relay_tenant_id="t", relay_client_id="c",
                  relay_hostname="relay.test", ansible_managed="managed", inventory_hostname="relay.test")
    values.update(overrides)
    # What tasks/validate.yml registers from files/relay_networks.py (given __relay_allowed_networks).
    allowed = Templar(loader=DataLoader(), variables=values).template(values["__relay_allowed_networks"])
    networks = [NETWORKS.parse(n)[0] for n in allowed]
    values["__relay_networks"] = {"stdout": json.dumps(networks), "rc": 0}
    bound = [NETWORKS.parse(b["network"])[0] for b in values.get("relay_sender_networks", [])]
    values["__relay_sender_networks"] = {"stdout": json.dumps(bound), "rc": 0}
    return values


def render(template, **overrides):
    with open(os.path.join(ROLE, "templates", template)) as handle:
        source = handle.read()
    return Templar(loader=DataLoader(), variables=role_vars(**overrides)).template(trust_as_template(source))


def resolve(name, **overrides):
    """One of the role's variables as Ansible would template it."""
    values = role_vars(**overrides)
    return Templar(loader=DataLoader(), variables=values).template(values[name])


def template_value(value, **overrides):
    """A value written in one of the role's files (a task's argument) as Ansible would template it."""
    return Templar(loader=DataLoader(), variables=role_vars(**overrides)).template(trust_as_template(value))


def load_tasks(name):
    """One of the role's task files, as YAML."""
    with open(os.path.join(ROLE, "tasks", name)) as handle:
        return yaml.safe_load(handle)
