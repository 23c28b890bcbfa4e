"""Microsoft's Graph v1.0 contract, checked on every request the emulated Graph serves.

The contract is tests/emulator/contract/graph_v1.json, extracted by scripts/extract_graph_contract.py from
microsoftgraph/msgraph-metadata (schemas/v1.0-Prod.csdl, the commit is in the file): never from our own code.
`check(request)` resolves the URL (entity set, key or alternate key, key-as-segment, navigation property, bound
action or function, cast, $ref, $count), the body's property names and value kinds (nested complex types,
collections of them, @odata.type), an action's parameter names, and the property names in $select, $expand,
$filter and $orderby. What Graph would refuse raises ContractError with Graph's status, code and message; what it
would accept returns a Target (the type the request addresses and a shape such as
"POST applications/{id}/addPassword") that the handler logs as `contract`/`graph_route` in tenant.log.

Graph's texts come from answers Microsoft's services are seen to give (cited in docs/development.md, "Emulator
assumptions / Graph"); where none was found the message follows OData's own wording and is marked there.
"""

import json
import os
import re
from urllib.parse import unquote

from emulator.graph_odata import ODataError, Filter, query_value

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "contract", "graph_v1.json")
NAMESPACE = "microsoft.graph"
QUERY_OPTIONS = ("$select", "$filter", "$orderby", "$top", "$skip", "$skiptoken", "$count", "$search", "$expand",
                 "$format", "$deltatoken")
_SEGMENT = re.compile(r"^(?P<name>[^()]*)(?:\((?P<args>.*)\))?$", re.S)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$")
# A directory object's open-type properties are directory extensions: extension_{appId without dashes}_{name}.
_EXTENSION = re.compile(r"^extension_[0-9a-fA-F]{32}_\w+$")


class ContractError(ODataError):
    """A request Graph v1.0 would refuse: status, code and message as Graph answers."""

    def __init__(self, code, message, status=400):
        super(ContractError, self).__init__(code, message)
        self.status = status


def segment_not_found(name):
    return ContractError("BadRequest", "Resource not found for the segment '%s'." % name)


def invalid_property(name):
    return ContractError("Request_BadRequest", "Invalid property '%s'." % name)


def unreadable():
    return ContractError("BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is "
                                       "set and payload is of valid JSON format.")


def invalid_value(name, owner):
    return ContractError("Request_BadRequest", "Invalid value specified for property '%s' of resource '%s'."
                         % (name, owner[:1].upper() + owner[1:]))


class Target(object):
    """What a request addresses once its path resolved: kind (collection | entity | operation | count | ref |
    property | beyond: below a navigation property to a type the contract does not vendor), the entity type, the
    operation (for actions) and a shape naming the route without key values."""

    def __init__(self, kind, type_name, shape, operation=None, contained=True):
        self.kind, self.type_name, self.shape = kind, type_name, shape
        self.operation, self.contained = operation, contained


class Contract(object):
    def __init__(self, data):
        self.data = data
        self.source = data["source"]
        self.sets = data["entity_sets"]
        self.entities = data["entity_types"]
        self.complexes = data["complex_types"]
        self.enums = data["enum_types"]
        self.operations = data["operations"]

    # -- types ---------------------------------------------------------------------------------------------------
    def base_chain(self, name):
        chain = []
        while name:
            chain.append(name)
            name = (self.entities.get(name) or self.complexes.get(name) or {}).get("base")
        return chain

    def structure(self, name):
        return self.entities.get(name) or self.complexes.get(name)

    def members(self, name):
        """Structural and navigation property names of a type (for query options)."""
        found = self.structure(name) or {}
        return list(found.get("properties", {})) + list(found.get("navigation", {}))

    def operation(self, binding, name):
        """A bound action / function on binding ('application' or 'Collection(application)') or a base type."""
        collection = binding.startswith("Collection(")
        element = binding[len("Collection("):-1] if collection else binding
        for type_name in self.base_chain(element):
            key = "Collection(%s)" % type_name if collection else type_name
            found = (self.operations.get(key) or {}).get(name)
            if found is not None:
                return found
        return None

    def cast(self, segment, type_name):
        """A type-cast segment ('microsoft.graph.user') to type_name or one derived from it, else None."""
        if not segment.startswith(NAMESPACE + "."):
            return None
        target = segment[len(NAMESPACE) + 1:]
        return target if target in self.entities and type_name in self.base_chain(target) else None

    # -- the URL -------------------------------------------------------------------------------------------------
    def resolve(self, path):
        """path: what follows /v1.0/ (still percent-encoded). Returns a Target or raises ContractError."""
        raw = [s for s in path.split("/") if s]
        if not raw:
            raise segment_not_found("")
        state = None  # (kind, type, contained) while walking
        shape = []
        for text in raw:
            segment = unquote(text)
            match = _SEGMENT.match(segment)
            name, args = match.group("name"), match.group("args")
            if state is None:
                if name not in self.sets:
                    raise segment_not_found(name)
                kind = "entity" if self.sets[name].get("singleton") else "collection"
                state = (kind, self.sets[name]["type"], True)
                shape.append(name)
            elif state[0] == "collection":
                state = self._after_collection(state, name, args, segment, shape)
                args = None  # a key in parentheses follows an entity set or a navigation property only
            elif state[0] == "entity":
                state = self._after_entity(state, name, args, segment, shape)
                if state[0] != "collection":
                    args = None  # a function's arguments
            elif state[0] == "beyond":  # below a type this contract does not vendor: not checked further
                shape.append(name)
                continue
            else:  # nothing follows an action, a function, $count, $ref or a property value
                raise segment_not_found(segment)
            if args is not None and state[0] == "collection":
                self._key(state[1], args, segment, shape)
                state = ("entity", state[1], state[2])
        kind, type_name, contained = state[:3]
        operation = state[3] if len(state) > 3 else None
        return Target(kind, type_name, "/".join(shape).replace("/(", "("), operation, contained)

    def _after_collection(self, state, name, args, segment, shape):
        type_name, contained = state[1], state[2]
        if name == "$count" and args is None:
            shape.append("$count")
            return ("count", type_name, contained)
        if name == "$ref" and args is None and not contained:
            shape.append("$ref")
            return ("ref", type_name, contained)
        operation = self.operation("Collection(%s)" % type_name, name)
        if operation is not None:
            shape.append(name)
            return ("operation", type_name, contained, dict(operation, name=name))
        derived = self.cast(name, type_name)
        if derived is not None and args is None:
            shape.append(name)
            return ("collection", derived, contained)
        if args is None and name and not name.startswith("$"):
            shape.append("{id}")  # key as segment: GET /applications/{id}
            return ("entity", type_name, contained)
        raise segment_not_found(segment)

    def _after_entity(self, state, name, args, segment, shape):
        type_name, contained = state[1], state[2]
        entity = self.entities[type_name]
        if name in entity["navigation"]:
            nav = entity["navigation"][name]
            shape.append(name)
            if nav["type"] not in self.entities:  # e.g. extensionProperties: Graph's, never sent by the collection
                return ("beyond", nav["type"], nav["contained"])
            return ("collection" if nav["collection"] else "entity", nav["type"], nav["contained"])
        if name == "$ref" and args is None and not contained:
            shape.append("$ref")
            return ("ref", type_name, contained)
        operation = self.operation(type_name, name)
        if operation is not None and (args is None) == (operation["kind"] == "action"):
            shape.append(name)
            return ("operation", type_name, contained, dict(operation, name=name))
        if args is None and name in entity["properties"]:
            shape.append(name)
            return ("property", type_name, contained)
        derived = self.cast(name, type_name)
        if derived is not None and args is None:
            shape.append(name)
            return ("entity", derived, contained)
        raise segment_not_found(segment)

    def _key(self, type_name, args, segment, shape):
        """`('x')`, `(x)` (a GUID) or `(alternateKey='x')`: the key must be the type's key or an alternate key."""
        entity = self.entities[type_name]
        named = re.match(r"^\s*(\w+)\s*=\s*(.*)$", args, re.S)
        if named is None:
            shape.append("({%s})" % entity["key"][0])
            value = args
        else:
            key = named.group(1)
            if [key] not in entity["alternate_keys"] and [key] != entity["key"]:
                raise ContractError("BadRequest", "The key property '%s' is not a key or an alternate key of type "
                                                  "'%s.%s'." % (key, NAMESPACE, type_name))
            shape.append("(%s)" % key)
            value = named.group(2)
        value = value.strip()
        if not ((len(value) >= 2 and value[0] == value[-1] == "'") or _GUID.match(value)):
            raise ContractError("BadRequest", "Bad Request - Error in query syntax: the key in segment '%s' is not "
                                              "a literal." % segment)

    # -- bodies --------------------------------------------------------------------------------------------------
    def check_body(self, target, method, body):
        if body is None:
            return
        if target.kind == "operation":
            return self._check_parameters(target.operation, body)
        if target.kind == "ref":
            if not isinstance(body, dict) or set(body) - {"@odata.id"}:
                raise ContractError("BadRequest", "A reference body carries '@odata.id' only.")
            return
        if method in ("POST", "PATCH", "PUT") and target.kind in ("collection", "entity"):
            self._check_object(target.type_name, body, target.type_name)

    def _check_parameters(self, operation, body):
        if not isinstance(body, dict):
            raise unreadable()
        for name, value in body.items():
            param = operation["parameters"].get(name)
            if param is None:
                raise ContractError("BadRequest", "The parameter '%s' in the request payload is not a valid "
                                                  "parameter for the operation '%s'." % (name, operation["name"]))
            self._check_value(name, param["type"], param["nullable"], value, operation["name"])

    def _check_object(self, type_name, obj, owner):
        if not isinstance(obj, dict):
            raise invalid_value(owner, owner)
        declared = obj.get("@odata.type")
        if declared is not None:
            wanted = str(declared).lstrip("#")
            short = wanted[len(NAMESPACE) + 1:] if wanted.startswith(NAMESPACE + ".") else None
            if short is None or self.structure(short) is None or type_name not in self.base_chain(short):
                raise ContractError("BadRequest", "A type named '%s' could not be resolved by the model." % wanted)
            type_name = short
        structure = self.structure(type_name)
        for name, value in obj.items():
            if name.startswith("@"):
                continue  # instance annotations (@odata.type, @odata.id ...)
            if "@" in name:  # property annotation, e.g. owners@odata.bind: the property must exist
                name = name.split("@", 1)[0]
                if name not in structure["properties"] and name not in structure.get("navigation", {}):
                    raise invalid_property(name)
                continue
            prop = structure["properties"].get(name)
            if prop is not None:
                self._check_value(name, prop["type"], prop["nullable"], value, type_name)
            elif name in structure.get("navigation", {}):
                continue  # deep insert: its target type is checked by its own requests
            elif not (structure.get("open") and type_name in self.entities and _EXTENSION.match(name)):
                raise invalid_property(name)

    def _check_value(self, name, type_name, nullable, value, owner):
        if value is None:
            if nullable and not type_name.startswith("Collection("):
                return
            raise invalid_value(name, owner)
        if type_name.startswith("Collection("):
            if not isinstance(value, list):
                raise invalid_value(name, owner)
            for item in value:
                self._check_value(name, type_name[len("Collection("):-1], False, item, owner)
            return
        if self.structure(type_name) is not None:
            return self._check_object(type_name, value, type_name)
        if type_name in self.enums:
            if not (isinstance(value, str) and all(v.strip() in self.enums[type_name] for v in value.split(","))):
                raise invalid_value(name, owner)
            return
        if not _primitive_ok(type_name, value):
            raise invalid_value(name, owner)

    # -- query options -------------------------------------------------------------------------------------------
    def check_query(self, target, query):
        for option in query or {}:
            if option.startswith("$") and option.lower() not in QUERY_OPTIONS:
                raise ContractError("BadRequest", "The query parameter '%s' is not supported." % option)
        if target.kind not in ("collection", "entity"):
            return
        type_name = target.type_name
        known = dict((n.lower(), n) for n in self.members(type_name))
        for option in ("$select", "$expand"):
            for name in _names(query_value(query, option)):
                base = name.split("(", 1)[0].strip()
                if base.lower() not in known and base != "*":
                    raise ContractError("BadRequest", "Parsing OData Select and Expand failed: Could not find a "
                                                      "property named '%s' on type '%s.%s'."
                                        % (base, NAMESPACE, type_name))
        for name in _names(query_value(query, "$orderby")):
            base = name.split()[0]
            if base.lower() not in known:
                raise ContractError("BadRequest", "Could not find a property named '%s' on type '%s.%s'."
                                    % (base, NAMESPACE, type_name))
        text = query_value(query, "$filter")
        if text:
            def unknown(name):
                return ContractError("BadRequest", "Invalid filter clause: Could not find a property named '%s' "
                                                   "on type '%s.%s'." % (name, NAMESPACE, type_name))
            Filter(text, list(known.values()), type_name, unknown=unknown)

    def canonical(self, type_name, name):
        """The property's own spelling (query options are matched case-insensitively)."""
        for known in self.members(type_name):
            if known.lower() == name.lower():
                return known
        return name


def _names(text):
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _primitive_ok(type_name, value):
    if type_name == "Edm.String":
        return isinstance(value, str)
    if type_name == "Edm.Boolean":
        return isinstance(value, bool)
    if type_name in ("Edm.Int32", "Edm.Int64", "Edm.Int16", "Edm.Byte"):
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name in ("Edm.Double", "Edm.Single", "Edm.Decimal"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_name == "Edm.Guid":
        return isinstance(value, str) and bool(_GUID.match(value))
    if type_name == "Edm.DateTimeOffset":
        return isinstance(value, str) and bool(_DATE.match(value))
    if type_name in ("Edm.Binary", "Edm.Duration", "Edm.Date", "Edm.TimeOfDay"):
        return isinstance(value, str)
    return True  # Edm.Stream and the like: not sent as JSON values by the collection


_LOADED = []


def contract():
    """The vendored contract, read once per process."""
    if not _LOADED:
        with open(PATH) as handle:
            _LOADED.append(Contract(json.load(handle)))
    return _LOADED[0]


def check(request):
    """Check one /v1.0/ request against the contract: the Target, or ContractError."""
    graph = contract()
    path = request.path.split("/v1.0/", 1)[1] if "/v1.0/" in request.path else ""
    target = graph.resolve(path)
    graph.check_query(target, request.query)
    if request.method in ("POST", "PATCH", "PUT") and request.body:
        body = request.json
        if body is None:
            raise unreadable()
        graph.check_body(target, request.method, body)
    return target
