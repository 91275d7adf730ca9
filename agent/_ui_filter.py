"""The runs table's filter: plain text, or expressions as MLflow's search writes them.

    metrics.training_score > 0.9 and params.max_depth = 10
    status = 'RUNNING' or tags.`mlflow.source.name` LIKE '%train%'

A filter is parsed once into a predicate over a run's row (a plain dict), then
applied to every row in Python: a store of a few thousand runs filters in
milliseconds this way, and no text from the browser ever reaches SQL.

Text that holds no comparison operator is a case-insensitive search in the run's
name, id, experiment, status and source file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

Row = dict[str, Any]
Predicate = Callable[[Row], bool]

ENTITIES = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
}
# Columns of a row that can be named bare (``status = 'FAILED'``) or as attributes.X.
ATTRIBUTES = (
    "run_id",
    "name",
    "status",
    "experiment",
    "start_time",
    "end_time",
    "duration",
    "source",
    "commit",
    "parent_run_id",
)
OPERATORS = ("<=", ">=", "!=", "==", "=", "<", ">", "LIKE", "ILIKE")
_ACCEPTED = (
    "ENTITY.KEY OP VALUE joined by 'and' / 'or' (parentheses allowed); ENTITY is metrics, "
    "params, tags or attributes (or a bare " + ", ".join(ATTRIBUTES) + "); OP is one of "
    "= != < <= > >= LIKE ILIKE; VALUE a number or a quoted string"
)

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<op><=|>=|!=|==|=|<|>)
      | (?P<paren>[()])
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<backquoted>`[^`]*`)
      | (?P<word>[^\s()<>=!'"`]+)
    )""",
    re.VERBOSE,
)
_LOOKS_LIKE_EXPRESSION = re.compile(
    r"[<>=]|!=|\s(?:like|ilike)\s|^\W*(?:metrics?|params?|tags?|attributes?|attr)\.",
    re.IGNORECASE,
)


class FilterError(ValueError):
    """A filter that cannot be parsed; the message is one line and says what is accepted."""


def compile_filter(text: str | None) -> Predicate:
    """The predicate a filter string stands for; an empty filter keeps every row."""
    text = (text or "").strip()
    if not text:
        return lambda row: True
    if not _LOOKS_LIKE_EXPRESSION.search(text):
        needle = text.lower()
        return lambda row: _text_match(row, needle)
    parser = _Parser(_tokens(text), text)
    predicate = parser.expression()
    if parser.position < len(parser.tokens):
        raise parser.error("unexpected " + repr(parser.tokens[parser.position][1]))
    return predicate


def _text_match(row: Row, needle: str) -> bool:
    for field in ("name", "run_id", "experiment", "status", "source"):
        value = row.get(field)
        if value and needle in str(value).lower():
            return True
    return False


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise FilterError(
                f"bad filter {text!r}: cannot read {text[position:].strip()!r}; expected "
                + _ACCEPTED
            )
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent: or-expression of and-expressions of comparisons."""

    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.position = 0

    def error(self, what: str) -> FilterError:
        return FilterError(f"bad filter {self.text!r}: {what}; expected {_ACCEPTED}")

    def _peek_word(self) -> str:
        if self.position < len(self.tokens) and self.tokens[self.position][0] == "word":
            return self.tokens[self.position][1].lower()
        return ""

    def _next(self, what: str) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise self.error(f"it ends where {what} should follow")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expression(self) -> Predicate:
        parts = [self.conjunction()]
        while self._peek_word() == "or":
            self.position += 1
            parts.append(self.conjunction())
        if len(parts) == 1:
            return parts[0]
        return lambda row: any(part(row) for part in parts)

    def conjunction(self) -> Predicate:
        parts = [self.term()]
        while self._peek_word() == "and":
            self.position += 1
            parts.append(self.term())
        if len(parts) == 1:
            return parts[0]
        return lambda row: all(part(row) for part in parts)

    def term(self) -> Predicate:
        kind, value = self._next("a comparison")
        if kind == "paren" and value == "(":
            inner = self.expression()
            kind, value = self._next("')'")
            if (kind, value) != ("paren", ")"):
                raise self.error(f"expected ')' instead of {value!r}")
            return inner
        if kind not in ("word", "backquoted"):
            raise self.error(f"expected a column name instead of {value!r}")
        entity, key = self._column(kind, value)
        kind, op = self._next("an operator")
        op = op.upper()
        if op not in OPERATORS:
            raise self.error(f"unknown operator {op!r} after {entity}.{key}")
        kind, raw = self._next("a value")
        if kind == "string":
            operand: Any = re.sub(r"\\(.)", r"\1", raw[1:-1])
        elif kind == "word":
            operand = _number(raw)
            if operand is None:
                operand = raw
        else:
            raise self.error(f"expected a value after {op} instead of {raw!r}")
        return _comparison(entity, key, op, operand)

    def _column(self, kind: str, value: str) -> tuple[str, str]:
        if kind == "backquoted":
            name = value[1:-1]
            if name in ATTRIBUTES:
                return "attributes", name
            raise self.error(f"unknown column {value}")
        prefix, dot, rest = value.partition(".")
        entity = ENTITIES.get(prefix.lower()) if dot else None
        if entity is None:
            if value in ATTRIBUTES:
                return "attributes", value
            raise self.error(f"unknown column {value!r}")
        if not rest:  # metrics.`name with spaces`
            kind, quoted = self._next("a key")
            if kind != "backquoted":
                raise self.error(f"expected a key after {value!r}")
            rest = quoted[1:-1]
        if entity == "attributes" and rest not in ATTRIBUTES:
            raise self.error(f"unknown attribute {rest!r}")
        return entity, rest


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _like(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    parts = ("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern)
    return re.compile("".join(parts) + r"\Z", 0 if case_sensitive else re.IGNORECASE | re.DOTALL)


def _comparison(entity: str, key: str, op: str, operand: Any) -> Predicate:
    """A predicate comparing one field of a row; a run without the field never matches."""
    if op in ("LIKE", "ILIKE"):
        regex = _like(str(operand), op == "LIKE")

        def like(row: Row) -> bool:
            found = _field(row, entity, key)
            return found is not None and regex.match(str(found)) is not None

        return like

    def compare(row: Row) -> bool:
        found = _field(row, entity, key)
        if found is None:
            return False
        left: Any = found
        right: Any = operand
        as_number = _number(found) if not isinstance(found, (int, float)) else float(found)
        if isinstance(operand, float) and as_number is not None:
            left = as_number
        else:
            left, right = str(found), str(operand)
            if isinstance(operand, float) and operand.is_integer():
                right = str(int(operand))
        if isinstance(left, float) and math.isnan(left):
            return op == "!="
        if op in ("=", "=="):
            return left == right
        if op == "!=":
            return left != right
        if op == "<":
            return left < right
        if op == "<=":
            return left <= right
        if op == ">":
            return left > right
        return left >= right

    return compare


def _field(row: Row, entity: str, key: str) -> Any:
    if entity == "attributes":
        return row.get(key)
    return row.get(entity, {}).get(key)
