#!/usr/bin/env python
"""Extract the emulator's Graph contract from Microsoft's published v1.0 metadata.

Source: github.com/microsoftgraph/msgraph-metadata (MIT), file schemas/v1.0-Prod.csdl. The output,
tests/emulator/contract/graph_v1.json, holds only what the collection's Graph requests touch: the entity sets it
addresses, their entity types (keys, alternate keys, properties with types, navigation properties), every complex
and enum type reachable from those properties, and the actions / functions bound to those types with their
parameters. tests/emulator/graph_contract.py checks every request of the emulated Graph against it.

    python scripts/extract_graph_contract.py --repo /work/.mirror/microsoftgraph+msgraph-metadata/repo [--commit C]
    python scripts/extract_graph_contract.py --csdl v1.0-Prod.csdl --commit C   # a file read elsewhere

--check compares instead of writing (exit 1 on a difference). Standard library only.
"""

import argparse
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

from contract_file import write_or_check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, "tests", "emulator", "contract", "graph_v1.json")
CSDL_PATH = "schemas/v1.0-Prod.csdl"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
NAMESPACE = "microsoft.graph"

# The entity sets the collection addresses (plugins/module_utils/_entra/):
# applications (upsert by uniqueName, by id, addPassword/removePassword, federatedIdentityCredentials, owners),
# servicePrincipals (by appId, by id, appRoleAssignments, appRoleAssignedTo), users (owners by UPN) and
# directoryObjects (owners by object id). Their entity types, the types their navigation properties lead to, and
# every complex / enum type those reach are extracted; nothing else.
ENTITY_SETS = ("applications", "servicePrincipals", "users", "directoryObjects")
# Singletons the collection addresses: roleManagement (directory role assignments of a service principal,
# /roleManagement/directory/roleAssignments; entra_directory_role). Kept with the sets, marked "singleton".
SINGLETONS = ("roleManagement",)
# users are only read (never written) by the collection: their own properties, navigation properties and bound
# operations are kept (names and type names), but the complex types they use are not followed: a smaller file.
SHALLOW = ("user",)


def short(type_name):
    """'graph.keyCredential' / 'microsoft.graph.keyCredential' -> 'keyCredential'; Collection(...) kept."""
    if type_name.startswith("Collection(") and type_name.endswith(")"):
        return "Collection(%s)" % short(type_name[len("Collection("):-1])
    for prefix in ("graph.", NAMESPACE + "."):
        if type_name.startswith(prefix) and "." not in type_name[len(prefix):]:
            return type_name[len(prefix):]
    return type_name


def element_type(type_name):
    return type_name[len("Collection("):-1] if type_name.startswith("Collection(") else type_name


class Schema(object):
    """The microsoft.graph schema of a CSDL document, indexed by type name."""

    def __init__(self, xml_bytes):
        root = ET.fromstring(xml_bytes)
        self.schema = next(s for s in root.iter(EDM + "Schema") if s.get("Namespace") == NAMESPACE)
        self.entities, self.complexes, self.enums = {}, {}, {}
        for node in self.schema:
            name = node.get("Name")
            if node.tag == EDM + "EntityType":
                self.entities[name] = node
            elif node.tag == EDM + "ComplexType":
                self.complexes[name] = node
            elif node.tag == EDM + "EnumType":
                self.enums[name] = node
        self.operations = [n for n in self.schema if n.tag in (EDM + "Action", EDM + "Function")
                           and n.get("IsBound") == "true"]
        self.container = next(self.schema.iter(EDM + "EntityContainer"))
        self.annotations = dict((n.get("Target"), n) for n in root.iter(EDM + "Annotations"))

    def base_chain(self, name, table):
        chain = []
        while name:
            chain.append(name)
            base = table[name].get("BaseType")
            name = short(base) if base else None
        return chain

    def properties(self, name, table):
        """Structural properties, inherited ones first: {name: {"type", "nullable"}}."""
        out = {}
        for type_name in reversed(self.base_chain(name, table)):
            for prop in table[type_name].findall(EDM + "Property"):
                out[prop.get("Name")] = {"type": short(prop.get("Type")),
                                         "nullable": prop.get("Nullable", "true") != "false"}
        return out

    def navigation(self, name):
        out = {}
        for type_name in reversed(self.base_chain(name, self.entities)):
            for nav in self.entities[type_name].findall(EDM + "NavigationProperty"):
                target = short(nav.get("Type"))
                out[nav.get("Name")] = {"type": element_type(target), "collection": target != element_type(target),
                                        "contained": nav.get("ContainsTarget") == "true"}
        return out

    def keys(self, name):
        for type_name in self.base_chain(name, self.entities):
            key = self.entities[type_name].find(EDM + "Key")
            if key is not None:
                return [ref.get("Name") for ref in key.findall(EDM + "PropertyRef")]
        return []

    def alternate_keys(self, name):
        out = []
        for type_name in self.base_chain(name, self.entities):
            for annotation in self.entities[type_name].findall(EDM + "Annotation"):
                if annotation.get("Term") != "Org.OData.Core.V1.AlternateKeys":
                    continue
                for record in annotation.iter(EDM + "Record"):
                    if record.get("Type") != "Org.OData.Core.V1.AlternateKey":
                        continue
                    parts = [value.get("PropertyPath") for value in record.iter(EDM + "PropertyValue")
                             if value.get("Property") == "Name"]
                    if parts:
                        out.append(parts)
        return out

    def upsertable(self, target):
        node = self.annotations.get(target)
        if node is None:
            return False
        for value in node.iter(EDM + "PropertyValue"):
            if value.get("Property") == "Upsertable" and value.get("Bool") == "true":
                return True
        return False

    def derived(self, name, table):
        return sorted(other for other in table if other != name and name in self.base_chain(other, table))


def extract(schema):
    sets, entity_names = {}, []
    for node in schema.container.findall(EDM + "EntitySet"):
        if node.get("Name") in ENTITY_SETS:
            type_name = short(node.get("EntityType"))
            target = "%s.GraphService/%s" % (NAMESPACE, node.get("Name"))
            sets[node.get("Name")] = {"type": type_name, "upsertable": schema.upsertable(target)}
            entity_names.append(type_name)
    for node in schema.container.findall(EDM + "Singleton"):
        if node.get("Name") in SINGLETONS:
            type_name = short(node.get("Type"))
            sets[node.get("Name")] = {"type": type_name, "upsertable": False, "singleton": True}
            entity_names.append(type_name)
    missing = set(ENTITY_SETS + SINGLETONS) - set(sets)
    if missing:
        raise SystemExit("entity sets not in the metadata: %s" % ", ".join(sorted(missing)))

    # Entity types: the sets' types, what their navigation properties lead to, and what users are (owners).
    todo, entities = list(entity_names), {}
    while todo:
        name = todo.pop()
        if name in entities or name not in schema.entities:
            continue
        navigation = schema.navigation(name)
        entities[name] = {"base": short(schema.entities[name].get("BaseType") or "") or None,
                          "abstract": schema.entities[name].get("Abstract") == "true",
                          "open": schema.entities[name].get("OpenType") == "true",
                          "key": schema.keys(name),
                          "alternate_keys": schema.alternate_keys(name),
                          "properties": schema.properties(name, schema.entities),
                          "navigation": navigation}
        for nav_name, nav in sorted(navigation.items()):
            # Only the navigation properties the collection follows pull their target type in.
            if nav_name in FOLLOWED_NAVIGATION:
                todo.append(nav["type"])
                if nav["contained"]:
                    entities[name]["navigation"][nav_name]["upsertable"] = schema.upsertable(
                        "%s.%s/%s" % (NAMESPACE, name, nav_name))
        for base in schema.base_chain(name, schema.entities)[1:]:
            todo.append(base)
    # Entity types reachable through a cast from directoryObject that the collection meets (owners are users).
    for name in entities:
        entities[name]["derived"] = [d for d in schema.derived(name, schema.entities) if d in entities]

    operations = {}
    for node in schema.operations:
        params = node.findall(EDM + "Parameter")
        binding = short(params[0].get("Type"))
        if element_type(binding) not in entities:
            continue
        returns = node.find(EDM + "ReturnType")
        operations.setdefault(binding, {})[node.get("Name")] = {
            "kind": "action" if node.tag == EDM + "Action" else "function",
            "parameters": dict((p.get("Name"), {"type": short(p.get("Type")),
                                                "nullable": p.get("Nullable", "true") != "false"})
                               for p in params[1:]),
            "returns": short(returns.get("Type")) if returns is not None else None}

    # Complex and enum types reachable from the properties and parameters above (users' not followed).
    complexes, enums = {}, {}
    todo = []
    for name, entity in entities.items():
        if name not in SHALLOW:
            todo.extend(p["type"] for p in entity["properties"].values())
    for binding, by_name in operations.items():
        if element_type(binding) in SHALLOW:
            continue
        for op in by_name.values():
            todo.extend(p["type"] for p in op["parameters"].values())
            if op["returns"]:
                todo.append(op["returns"])
    while todo:
        name = element_type(todo.pop())
        if name in complexes or name in enums:
            continue
        if name in schema.enums:
            enums[name] = [m.get("Name") for m in schema.enums[name].findall(EDM + "Member")]
        elif name in schema.complexes:
            node = schema.complexes[name]
            complexes[name] = {"base": short(node.get("BaseType") or "") or None,
                               "abstract": node.get("Abstract") == "true",
                               "open": node.get("OpenType") == "true",
                               "properties": schema.properties(name, schema.complexes)}
            todo.extend(p["type"] for p in complexes[name]["properties"].values())
            todo.extend(schema.base_chain(name, schema.complexes)[1:])
            todo.extend(schema.derived(name, schema.complexes))  # values may name a derived type (@odata.type)
    for name in complexes:
        complexes[name]["derived"] = [d for d in schema.derived(name, schema.complexes) if d in complexes]
    return {"entity_sets": sets, "entity_types": entities, "complex_types": complexes, "enum_types": enums,
            "operations": operations}


# Navigation properties whose target types the contract needs (the collection reads or writes through them).
FOLLOWED_NAVIGATION = ("owners", "federatedIdentityCredentials", "appRoleAssignedTo", "appRoleAssignments",
                       "directory", "roleAssignments")


def render(contract, commit):
    document = {"source": {"repository": "microsoftgraph/msgraph-metadata", "path": CSDL_PATH, "commit": commit,
                           "license": "MIT"},
                "generated_by": "scripts/extract_graph_contract.py",
                "namespace": NAMESPACE}
    document.update(contract)
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def read_csdl(args):
    if args.csdl:
        with open(args.csdl, "rb") as handle:
            return handle.read(), args.commit
    commit = args.commit or subprocess.check_output(["git", "--git-dir", git_dir(args.repo), "rev-parse", "HEAD"],
                                                    universal_newlines=True).strip()
    data = subprocess.check_output(["git", "--git-dir", git_dir(args.repo), "show", "%s:%s" % (commit, CSDL_PATH)])
    return data, commit


def git_dir(repo):
    dotgit = os.path.join(repo, ".git")
    return dotgit if os.path.isdir(dotgit) else repo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--repo", help="a clone (or bare git dir) of microsoftgraph/msgraph-metadata")
    parser.add_argument("--csdl", help="the v1.0-Prod.csdl file itself (then --commit names its commit)")
    parser.add_argument("--commit", help="the metadata commit to read (default: the clone's HEAD)")
    parser.add_argument("--output", default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="fail if the output file differs")
    args = parser.parse_args(argv)
    if not (args.repo or args.csdl) or (args.csdl and not args.commit):
        parser.error("give --repo, or --csdl with --commit")
    data, commit = read_csdl(args)
    text = render(extract(Schema(data)), commit)
    return write_or_check(args.output, text, "%s@%s" % (CSDL_PATH, commit), args.check)


if __name__ == "__main__":
    sys.exit(main())
