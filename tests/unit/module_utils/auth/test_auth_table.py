"""The one table of auth options (_auth/kinds.py) and what derives from it or is held to it: the argument spec,
choosing and building each kind, the doc fragment (static text, checked here), the relay's proxy configuration
and the role's auth_method choices. A new credential kind is a row there and its Credential class."""

import json
import os
import re

import pytest
import yaml

from ansible_collections.o365.smtp_oauth.plugins.doc_fragments.auth import ModuleDocFragment
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import kinds, options
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.credential import Credential
from ansible_collections.o365.smtp_oauth.plugins.module_utils._module import AUTH_ARGUMENT_SPEC
from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import cloud_from_options
from helpers.relay_role import ROLE, load_file, render

TENANT = "8a6b7c1d-0000-4000-8000-000000000001"
CLIENT = "11111111-2222-4333-8444-555555555555"
TABLE = dict((o.name, o) for o in kinds.all_options())
FRAGMENT = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)


def test_each_option_is_in_the_table_once():
    names = [o.name for o in kinds.all_options()]
    assert len(names) == len(set(names))
    assert [k.name for k in kinds.KINDS] == list(kinds.AUTH_METHODS[1:])
    aliases = [a for k in kinds.KINDS for a in k.aliases]
    assert len(aliases) == len(set(aliases)) and not set(aliases) & set(kinds.AUTH_METHODS)


def test_the_argument_spec_is_the_table():
    assert set(AUTH_ARGUMENT_SPEC) == set(TABLE)
    for name, spec in AUTH_ARGUMENT_SPEC.items():
        option = TABLE[name]
        assert spec["type"] == option.type and spec.get("default") == option.default
        assert spec.get("choices") == (list(option.choices) if option.choices else None)
        assert spec["no_log"] is option.secret
        assert list(spec.get("fallback", (None, []))[1]) == list(option.env)


def test_the_doc_fragment_documents_the_table():
    documented = FRAGMENT["options"]
    assert set(documented) == set(TABLE)
    for name, doc in documented.items():
        option = TABLE[name]
        assert doc["type"] == option.type, name
        assert doc.get("default") == option.default, name
        assert set(doc.get("choices") or ()) == set(option.choices or ()), name
        text = " ".join(doc["description"])
        assert [v for v in option.env if "E(%s)" % v not in text] == [], name
        assert doc.get("version_added"), name
    # The note that names the secrets names every one of them.
    note = [n for n in FRAGMENT["notes"] if "never appear" in n][0]
    assert set(re.findall(r"O\((\w+)\)", note)) == set(n for n, o in TABLE.items() if o.secret)


def test_auto_mode_is_documented_in_the_table_order():
    text = " ".join(FRAGMENT["options"]["auth_method"]["description"])
    first = [o.name for k in kinds.KINDS for o in k.options if o.selects]
    named = [n for n in re.findall(r"O\((\w+)\)", text) if n in first]
    assert sorted(set(named), key=named.index) == first


class _Reads(dict):
    """Options that record which of them were read."""

    def __init__(self, *args, **kwargs):
        super(_Reads, self).__init__(*args, **kwargs)
        self.read = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super(_Reads, self).get(key, default)


def _ways(kind, tmp_path):
    """Option sets (and environments) that build the kind each way it can be built."""
    token = tmp_path / "token"
    token.write_text("a.b.c")
    set_ = {"access_token": [dict(access_token="a.b.c")],
            "certificate": [dict(certificate_path="/x", certificate_password="p",
                                 certificate_thumbprint_algorithm="sha1")],
            "client_secret": [dict(client_secret="s3cr3t-value")],
            "workload_identity": [dict(federated_token_file=str(token)),
                                  dict(federated_token_source="gitlab", federated_token_variable="MY_TOKEN")],
            "managed_identity": [dict(managed_identity=True, managed_identity_client_id=CLIENT)],
            "azure_cli": [dict(azure_cli=True)]}
    return set_[kind.name]


@pytest.mark.parametrize("kind", kinds.KINDS, ids=lambda k: k.name)
def test_each_class_reads_its_own_options_and_the_shared_ones_only(kind, tmp_path):
    cls = kinds.credential_class(kind)
    assert issubclass(cls, Credential) and cls.kind == kind.name
    own = set(o.name for o in kind.options)
    allowed = own | set(o.name for o in kinds.SHARED + kinds.CONNECTION)
    read = set(o.name for o in kind.options if o.selects)  # read when choosing the kind
    for given in _ways(kind, tmp_path):
        opts = dict(tenant_id=TENANT, client_id=CLIENT, **given)
        environ = {"GITLAB_CI": "true", "MY_TOKEN": "a.b.c"}
        built = options.credential_from_options(opts, environ=environ)
        assert built.__class__ is cls and built.option in own
        recorded = _Reads(opts)
        cls.from_options(recorded, environ, cloud=cloud_from_options(opts), ca_path=None, timeout=30)
        assert recorded.read <= allowed, recorded.read - allowed
        read |= recorded.read
    assert own <= read, own - read


@pytest.mark.parametrize("name", [o.name for k in kinds.KINDS for o in k.options if o.selects])
def test_each_option_that_selects_chooses_its_own_kind(name, tmp_path):
    kind = [k for k in kinds.KINDS if name in [o.name for o in k.options]][0]
    value = {"bool": True, "path": str(tmp_path)}.get(TABLE[name].type, CLIENT)
    if TABLE[name].choices:
        value = [c for c in TABLE[name].choices if c != TABLE[name].default][0]
    opts = dict(tenant_id=TENANT, client_id=CLIENT, **{name: value})
    assert options.credential_from_options(opts, environ={}).kind == kind.name
    assert options.options_choosing_a_kind(opts) == [name]
    for alias in kind.aliases + (kind.name,):
        assert options.credential_from_options(dict(opts, auth_method=alias), environ={}).kind == kind.name


class _NewKind(Credential):
    kind = "new_kind"

    @classmethod
    def from_options(cls, opts, environ, **common):
        return cls(tenant_id=opts.get("tenant_id"), **common)


def test_a_new_kind_is_a_row_and_a_class(monkeypatch):
    import types
    module = types.SimpleNamespace(NewKindCredential=_NewKind)
    row = kinds.Kind("new_kind", lambda: module, "NewKindCredential", aliases=("new",), relay=False, options=(
        kinds.option("new_kind_key", secret=True, selects=True),))
    monkeypatch.setattr(kinds, "KINDS", kinds.KINDS + (row,))
    chosen = options.credential_from_options(dict(tenant_id=TENANT, new_kind_key="k"), environ={})
    assert chosen.__class__ is _NewKind and chosen.option == "new_kind_key"
    assert options.credential_from_options(dict(tenant_id=TENANT, auth_method="new"), environ={}).kind == "new_kind"
    assert "new_kind_key" in options.credential_option_names() and "new_kind_key" in options.kind_option_names()
    assert "new_kind_key" not in options.credential_option_names(secrets=False)
    error = pytest.raises(Exception, options.credential_from_options, dict(tenant_id=TENANT), environ={}).value
    assert "new_kind_key" in error.fix


def test_the_relay_configuration_carries_the_relay_options():
    relay = [o for o in kinds.all_options() if o.relay]
    expected = set(o.name + "_file" if o.secret else o.name for o in relay)
    names = set(o.name for o in kinds.all_options())
    config = json.loads(render("proxy.json.j2"))
    carried = set(k for k in config if k in names or k[:-len("_file")] in names)
    assert carried == expected
    proxy = load_file(os.path.join(ROLE, "files", "o365_smtp_proxy.py"), "o365_smtp_proxy")
    assert proxy.SECRET_FILES == dict((o.name + "_file", o.name) for o in relay if o.secret)
    assert set(o.name for o in relay if not o.secret) <= set(proxy.AUTH_OPTIONS)
    # Every option a relay kind reads is carried, or has a default the relay keeps (documented in the table).
    for kind in kinds.KINDS:
        if kind.relay:
            assert [o.name for o in kind.options if not o.relay and o.default is None] == [], kind.name


def test_the_relay_role_offers_the_relay_kinds():
    with open(os.path.join(ROLE, "meta", "argument_specs.yml")) as handle:
        spec = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    assert spec["relay_auth_method"]["choices"] == ["auto"] + [k.name for k in kinds.KINDS if k.relay]
    for option in kinds.all_options():
        if option.relay and option.secret:
            assert spec["relay_" + option.name]["no_log"] is True


def test_the_awx_credential_type_sets_variables_the_table_reads():
    with open(os.path.join(os.path.dirname(ROLE), "..", "extensions", "awx", "credential_type_injectors.yml")) as handle:
        injected = yaml.safe_load(handle)["env"]
    assert set(injected) <= set(v for o in kinds.all_options() for v in o.env)
