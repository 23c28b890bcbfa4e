"""The exchange_* modules' DOCUMENTATION / EXAMPLES / RETURN parse and match their argument specs.

Read from the source with ast (no import), so this runs whatever the state of the shared module wrapper.
"""

import ast
import os

import pytest
import yaml

MODULES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "plugins", "modules")


def load(name):
    source = open(os.path.join(MODULES, name + ".py")).read()
    tree = ast.parse(source)
    docs, spec = {}, None
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and \
                isinstance(node.value, ast.Constant):
            docs[node.targets[0].id] = ast.literal_eval(node.value)
        if isinstance(node, ast.FunctionDef) and node.name == "argument_spec":
            namespace = {}
            exec(compile(ast.Module(body=[node], type_ignores=[]), name, "exec"), namespace)
            spec = namespace["argument_spec"]()
    return source, docs, spec


def compare(doc_options, spec, path=""):
    assert set(doc_options) == set(spec), path
    for name, option in spec.items():
        doc = doc_options[name]
        where = path + name
        assert doc.get("type", "str") == option.get("type", "str"), where
        assert bool(doc.get("required", False)) == bool(option.get("required", False)), where
        assert doc.get("default") == option.get("default"), where
        assert doc.get("choices") == option.get("choices"), where
        assert doc.get("elements") == option.get("elements"), where
        assert doc.get("description"), where
        if option.get("options"):
            compare(doc["suboptions"], option["options"], where + ".")


@pytest.mark.parametrize("name", ["exchange_smtp_access", "exchange_smtp_access_info"])
def test_documentation_matches_argument_spec(name):
    source, docs, spec = load(name)
    documentation = yaml.safe_load(docs["DOCUMENTATION"])
    assert documentation["module"] == name
    assert "o365.smtp_oauth.auth" in documentation["extends_documentation_fragment"]
    compare(documentation["options"], spec)
    examples = yaml.safe_load(docs["EXAMPLES"])
    # Every example uses the module itself (or shows its result, or proves it with send_mail).
    assert examples and all("o365.smtp_oauth.%s" % name in task or "ansible.builtin.debug" in task
                            or "o365.smtp_oauth.send_mail" in task for task in examples)
    assert any("o365.smtp_oauth.%s" % name in task for task in examples)
    returned = yaml.safe_load(docs["RETURN"])
    assert returned and all(v.get("description") for v in returned.values())
    assert "from __future__ import absolute_import, division, print_function" in source
    assert "GNU General Public License v3.0+" in source


def test_every_exchange_module_is_in_the_action_group():
    runtime = yaml.safe_load(open(os.path.join(MODULES, "..", "..", "meta", "runtime.yml")))
    assert {"exchange_smtp_access", "exchange_smtp_access_info"} <= set(runtime["action_groups"]["o365"])
