#!/usr/bin/env python
"""Extract the emulated Exchange admin API's contract from Microsoft's cmdlet reference.

Source: the public repository MicrosoftDocs/office-docs-powershell, folder exchange/exchange-ps/ExchangePowerShell,
one Markdown page per cmdlet. For every cmdlet the collection can send (and the emulator serves) it keeps what the
reference says about Exchange Online: the parameter names whose "Applicable:" line names Exchange Online, their
types and aliases, and the parameter sets (which parameters each set takes, which it requires). A set that requires
a parameter Exchange Online does not have cannot be used there and is left out.

    python scripts/extract_exchange_contract.py --git-dir <mirror of office-docs-powershell> [--commit <sha>] \
        [--out tests/emulator/contract/exchange_cmdlets.json] [--check]

--check compares with the vendored file instead of writing it (exit 1 on a difference). Plain Python 3 stdlib.
"""

import argparse
import json
import os
import re
import subprocess
import sys

from contract_file import write_or_check

REPO = "MicrosoftDocs/office-docs-powershell"
FOLDER = "exchange/exchange-ps/ExchangePowerShell"
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "emulator", "contract", "exchange_cmdlets.json")
ONLINE = "Exchange Online"
# Every cmdlet a module of the collection sends, and every cmdlet the emulator serves: the same list.
CMDLETS = (
    "Add-MailboxPermission", "Add-RecipientPermission", "Get-CASMailbox", "Get-Mailbox", "Get-MailboxPermission",
    "Get-ManagementRole", "Get-ManagementRoleAssignment", "Get-ManagementScope", "Get-Recipient",
    "Get-RecipientPermission",
    "Get-ServicePrincipal", "Get-TransportConfig", "New-ManagementRoleAssignment", "New-ManagementScope",
    "New-ServicePrincipal", "Remove-MailboxPermission", "Remove-ManagementRoleAssignment", "Remove-ManagementScope",
    "Remove-RecipientPermission", "Remove-ServicePrincipal", "Set-CASMailbox", "Set-ManagementScope",
    "Test-ServicePrincipalAuthorization",
)
DEFAULT_SET = "__AllParameterSets"


def git(git_dir, *args):
    return subprocess.run(("git", "--git-dir", git_dir) + args, check=True, capture_output=True,
                          text=True).stdout


def sections(text, level):
    """[(heading, body)] of the Markdown headings of one level ('##' or '###')."""
    parts = re.split(r"^%s (.+)$" % re.escape(level), text, flags=re.M)
    return [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts) - 1, 2)]


def yaml_blocks(body):
    blocks = []
    for block in re.findall(r"```yaml\n(.*?)```", body, flags=re.S):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        blocks.append(fields)
    return blocks


def parse_cmdlet(text):
    top = dict(sections(text, "##"))
    set_names = [name for name, unused_body in sections(top.get("SYNTAX", ""), "###")] or [DEFAULT_SET]
    parameters, membership = {}, {name: {} for name in set_names}
    for heading, body in sections(top.get("PARAMETERS", ""), "###"):
        if not heading.startswith("-"):
            continue  # CommonParameters
        name = heading[1:].strip()
        applicable = re.search(r"^> Applicable: (.+)$", body, flags=re.M)
        online = bool(applicable) and ONLINE in applicable.group(1)
        blocks = yaml_blocks(body)
        if not blocks:
            continue
        if not online:
            for fields in blocks:  # remember where a set needs what Exchange Online lacks
                if fields.get("Required") == "True":
                    for set_name in _sets_of(fields, set_names):
                        membership[set_name][name] = None
            continue
        aliases = [a.strip() for a in blocks[0].get("Aliases", "").split(",") if a.strip()]
        parameters[name] = {"type": blocks[0].get("Type", ""), "aliases": aliases}
        # A deprecated parameter is never mandatory, whatever its YAML says: New-ServicePrincipal's page marks
        # -ServiceId "Required: True" and "being deprecated. Use the ObjectId parameter instead", and its own
        # example runs without it.
        replaced = re.search(r"being deprecated\. Use the (\w+) parameter instead", body)
        if replaced:
            parameters[name]["deprecated_for"] = replaced.group(1)
        for fields in blocks:
            for set_name in _sets_of(fields, set_names):
                membership[set_name][name] = fields.get("Required") == "True" and not replaced
    sets = {}
    for set_name, members in membership.items():
        if any(required is None for required in members.values()):
            continue  # needs a parameter that Exchange Online does not have
        sets[set_name] = {"parameters": sorted(members), "required": sorted(n for n, r in members.items() if r)}
    return {"parameters": dict(sorted(parameters.items())), "sets": dict(sorted(sets.items()))}


def _sets_of(fields, set_names):
    value = fields.get("Parameter Sets", "(All)")
    if value in ("(All)", ""):
        return set_names
    return [s.strip() for s in value.split(",") if s.strip() in set_names]


def extract(git_dir, commit):
    contract = {
        "source": {"repository": REPO, "folder": FOLDER, "commit": commit,
                   "regenerate": "python scripts/extract_exchange_contract.py --git-dir <mirror> --commit %s" % commit},
        "cmdlets": {},
    }
    for cmdlet in CMDLETS:
        contract["cmdlets"][cmdlet] = parse_cmdlet(git(git_dir, "show", "%s:%s/%s.md" % (commit, FOLDER, cmdlet)))
    return contract


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--git-dir", required=True, help="a git directory holding %s" % REPO)
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    commit = git(args.git_dir, "rev-parse", args.commit).strip()
    text = json.dumps(extract(args.git_dir, commit), indent=1, sort_keys=True) + "\n"
    return write_or_check(args.out, text, "%s@%s" % (REPO, commit), args.check)


if __name__ == "__main__":
    sys.exit(main())
