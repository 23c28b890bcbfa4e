# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Comparing OPATH recipient filters by meaning, not by spelling. Plain Python.

A scope is written with -RecipientRestrictionFilter and read back as RecipientFilter, in Exchange's own spelling
(it may add parentheses, change spacing, capitalisation of property names and operators, and the quotes). Two
filters are the same when their canonical forms are: property names and operators lowercased, values unquoted,
nested -or / -and flattened and their operands sorted. Text this parser does not understand compares as itself, so
an unknown spelling makes a re-run rewrite the scope (a visible change), never silently skip a wanted one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_TOKEN = re.compile(r"\s*(?:(\()|(\))|(-and|-or|-not|-eq|-ne|-like|-notlike)\b|'((?:[^']|'')*)'|\"((?:[^\"]|\"\")*)\""
                    r"|([A-Za-z0-9_.@-]+))", re.I)
# Case-insensitive properties (addresses, names): values compared lowercased.
_CASELESS = {"primarysmtpaddress", "emailaddresses", "memberofgroup", "alias", "name", "displayname",
             "userprincipalname", "recipienttypedetails", "externaldirectoryobjectid"}


class _Unparsed(Exception):
    pass


def _tokens(text):
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise _Unparsed(text)
        pos = match.end()
        if match.group(1) or match.group(2):
            out.append((match.group(1) or match.group(2), None))
        elif match.group(3):
            out.append(("op", match.group(3).lower()))
        elif match.group(4) is not None:
            out.append(("value", match.group(4).replace("''", "'")))
        elif match.group(5) is not None:
            out.append(("value", match.group(5).replace('""', '"')))
        else:
            out.append(("word", match.group(6)))
    return out


def _chain(tokens, pos, op, operand):
    items, pos = operand(tokens, pos)
    items = [items]
    while pos < len(tokens) and tokens[pos] == ("op", op):
        item, pos = operand(tokens, pos + 1)
        items.append(item)
    if len(items) == 1:
        return items[0], pos
    flat = []
    for item in items:  # (a -or b) -or c == a -or b -or c
        flat.extend(item[1] if item[0] == op else [item])
    return (op, tuple(sorted(set(flat), key=repr))), pos


def _or(tokens, pos):
    return _chain(tokens, pos, "-or", _and)


def _and(tokens, pos):
    return _chain(tokens, pos, "-and", _term)


def _term(tokens, pos):
    if pos >= len(tokens):
        raise _Unparsed("end")
    kind, value = tokens[pos]
    if kind == "(":
        tree, pos = _or(tokens, pos + 1)
        if pos >= len(tokens) or tokens[pos][0] != ")":
            raise _Unparsed("parenthesis")
        return tree, pos + 1
    if (kind, value) == ("op", "-not"):
        tree, pos = _term(tokens, pos + 1)
        return ("-not", tree), pos
    if kind != "word" or pos + 2 >= len(tokens):
        raise _Unparsed("term")
    if tokens[pos + 1][0] != "op" or tokens[pos + 2][0] not in ("value", "word"):
        raise _Unparsed("comparison")
    prop, operator, operand = value.lower(), tokens[pos + 1][1], tokens[pos + 2][1]
    return ("cmp", prop, operator, operand.lower() if prop in _CASELESS else operand), pos + 3


def canonical(text):
    """A comparable form of an OPATH filter; the stripped text itself when it cannot be parsed."""
    if text is None:
        return None
    try:
        tokens = _tokens(str(text))
        tree, pos = _or(tokens, 0)
        if pos != len(tokens):
            raise _Unparsed(text)
        return tree
    except (_Unparsed, IndexError):
        return ("text", str(text).strip())


def same_filter(left, right):
    return canonical(left) == canonical(right)
