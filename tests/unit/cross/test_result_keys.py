"""No module returns a top-level key that Ansible interprets itself (issue 12, bug 1: a count named `failed`
failed the task). The playbook-level proof is tests/integration/test_send_mail.py."""

import glob
import os
import ast

import yaml


def test_no_result_key_is_one_ansible_reads_itself():
    """Every module's documented top-level return keys stay clear of the keys Ansible interprets."""
    reserved = {"failed", "changed", "skipped", "msg", "rc", "attempts", "retries", "results", "invocation",
                "unreachable", "exception", "warnings", "deprecations", "ansible_facts", "stdout", "stderr",
                "stdout_lines", "stderr_lines", "censored", "module_stdout", "module_stderr", "item",
                "failed_when_result", "changed_when_result", "skip_reason"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    modules = sorted(glob.glob(os.path.join(root, "plugins", "modules", "*.py")))
    assert modules
    for path in modules:
        with open(path) as handle:
            tree = ast.parse(handle.read())
        [text] = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
                  and [getattr(t, "id", None) for t in node.targets] == ["RETURN"]]
        keys = set(yaml.safe_load(text) or {})
        assert not keys & reserved, (os.path.basename(path), keys & reserved)
