"""The OData query options the emulated Graph understands: $filter, $select, $top, $skiptoken, $count.

Only what directory objects support by default (eq, startswith, and, or, in, parentheses) plus `ne` / `not` /
`endswith`, which Graph accepts only as advanced queries (ConsistencyLevel: eventual and $count=true): a client
that sends them without the header gets the same 400 as from Graph. Parse errors raise ODataError(code, message).
"""

import base64
import re


class ODataError(Exception):
    def __init__(self, code, message):
        super(ODataError, self).__init__(message)
        self.code, self.message = code, message


def query_value(query, name):
    """One query option, whatever shape the router gives (dict of str or of lists)."""
    value = (query or {}).get(name)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return value


def parse_key_literal(text):
    """`'a''b'` -> a'b (an OData string literal as in key segments and $filter)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    raise ODataError("BadRequest", "Invalid key literal %s: string keys are quoted with single quotes." % text)


# -- $filter ---------------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<paren>[(),])|(?P<word>[A-Za-z_][\w/.]*)|"
                    r"(?P<num>-?\d+(?:\.\d+)?)|(?P<guid>[0-9a-fA-F-]{36}))")
_ADVANCED = ("ne", "not", "endswith")


def _tokens(text):
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ODataError("BadRequest", "Invalid filter clause: syntax error at position %d in '%s'."
                             % (pos, text))
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "str":
            value = value[1:-1].replace("''", "'")
        out.append((kind, value))
        pos = match.end()
    return out


class Filter(object):
    """A compiled $filter: matches(obj) -> bool. `advanced` lists operators that need ConsistencyLevel."""

    def __init__(self, text, properties, type_name="directoryObject", unknown=None):
        self.text = text
        self.unknown = unknown  # error factory for a property the type does not have (else: not filterable)
        self.properties = properties
        self.type_name = type_name
        self.advanced = []
        self.toks = _tokens(text)
        self.pos = 0
        self.test = self._or()
        if self.pos != len(self.toks):
            raise ODataError("BadRequest", "Invalid filter clause: unexpected '%s'." % self.toks[self.pos][1])

    def matches(self, obj):
        return self.test(obj)

    # recursive descent: or -> and -> not -> primary
    def _peek(self, value=None):
        if self.pos >= len(self.toks):
            return None
        tok = self.toks[self.pos]
        if value is not None and not (tok[0] in ("word", "paren") and tok[1].lower() == value):
            return None
        return tok

    def _take(self, value=None, kind=None):
        tok = self._peek(value)
        if tok is None or (kind and tok[0] != kind):
            raise ODataError("BadRequest", "Invalid filter clause: expected %s in '%s'." % (value or kind, self.text))
        self.pos += 1
        return tok

    def _or(self):
        return self._chain("or", self._and, lambda a, b: lambda o: a(o) or b(o))

    def _and(self):
        return self._chain("and", self._not, lambda a, b: lambda o: a(o) and b(o))

    def _chain(self, word, operand, combine):
        left = operand()
        while self._peek(word):
            self.pos += 1
            left = combine(left, operand())
        return left

    def _not(self):
        if self._peek("not"):
            self.pos += 1
            self.advanced.append("not")
            inner = self._not()
            return lambda o: not inner(o)
        return self._primary()

    def _primary(self):
        if self._peek("("):
            self.pos += 1
            inner = self._or()
            self._take(")")
            return inner
        tok = self._take(kind="word")
        name = tok[1]
        if self._peek("("):  # function call: startswith(prop, 'x') / endswith(...)
            func = name.lower()
            if func not in ("startswith", "endswith"):
                raise ODataError("Request_UnsupportedQuery", "Unsupported Query: function '%s'." % name)
            if func == "endswith":
                self.advanced.append(func)
            self.pos += 1
            prop = self._property(self._take(kind="word")[1])
            self._take(",")
            literal = self._literal()
            self._take(")")
            if func == "startswith":
                return lambda o: str(o.get(prop) or "").lower().startswith(str(literal).lower())
            return lambda o: str(o.get(prop) or "").lower().endswith(str(literal).lower())
        prop = self._property(name)
        op = self._take(kind="word")[1].lower()
        if op == "in":
            self._take("(")
            values = [self._literal()]
            while self._peek(","):
                self.pos += 1
                values.append(self._literal())
            self._take(")")
            wanted = set(_norm(v) for v in values)
            return lambda o: _norm(o.get(prop)) in wanted
        if op not in ("eq", "ne"):
            raise ODataError("Request_UnsupportedQuery", "Unsupported Query: operator '%s'." % op)
        if op in _ADVANCED:
            self.advanced.append(op)
        literal = _norm(self._literal())
        if op == "eq":
            return lambda o: _norm(o.get(prop)) == literal
        return lambda o: _norm(o.get(prop)) != literal

    def _property(self, name):
        for known in self.properties:
            if known.lower() == name.lower():
                return known
        if self.unknown is not None:
            raise self.unknown(name)
        raise ODataError("Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for "
                                                     "property '%s' of resource '%s'." % (name, self.type_name))

    def _literal(self):
        if self.pos >= len(self.toks):
            raise ODataError("BadRequest", "Invalid filter clause: a value is missing in '%s'." % self.text)
        kind, value = self.toks[self.pos]
        self.pos += 1
        if kind == "str":
            return value
        if kind == "word" and value.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[value.lower()]
        if kind in ("num", "guid"):
            return value
        raise ODataError("BadRequest", "Invalid filter clause: '%s' is not a literal (quote strings)." % value)


def _norm(value):
    """Directory string comparisons are case-insensitive."""
    return value.lower() if isinstance(value, str) else value


# -- $select ---------------------------------------------------------------------------------------------------
def parse_select(text, type_name, known):
    """The selected property names in their own spelling. graph_contract has refused names the type does not
    have (Graph's 400); a name of the type that the emulator does not model is answered as null."""
    if not text:
        return None
    from emulator.graph_contract import contract
    names = [n.strip() for n in text.split(",") if n.strip()]
    lookup = dict((k.lower(), k) for k in known)
    return [lookup.get(name.lower()) or contract().canonical(type_name, name) for name in names]


def select(obj, names):
    return obj if names is None else dict((n, obj.get(n)) for n in names)


# -- paging ----------------------------------------------------------------------------------------------------
def encode_skiptoken(offset):
    return base64.urlsafe_b64encode(("RFNwdAIAAQAAA:%d" % offset).encode()).decode().rstrip("=")


def decode_skiptoken(token):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        return int(raw.rsplit(":", 1)[1])
    except (ValueError, IndexError, UnicodeDecodeError):
        raise ODataError("Directory_ExpiredPageToken", "The specified page token value has expired and can no "
                                                       "longer be included in your request.")


def parse_top(text):
    if text is None:
        return None
    try:
        top = int(text)
    except ValueError:
        top = 0
    if not 1 <= top <= 999:
        raise ODataError("Request_BadRequest", "Invalid page size specified: '%s'. Must be between 1 and 999 "
                                               "inclusive." % text)
    return top
