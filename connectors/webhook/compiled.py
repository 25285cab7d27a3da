"""Plain-Python evaluators for the JMESPath shapes mappings use most.

A mapping evaluates about fifteen expressions per statement, nearly all of them field paths
(``data.session.id``), string comparisons (``type == 'session.completed'``) and hub function
calls on those (``template('{base}/...')``, ``to_datetime(data.ended_at)``). jmespath's tree
interpreter walks the AST through a visitor for each of them, which was the largest single cost
of normalizing (bench/profile_stages.py). Those shapes compile here into closures with exactly
jmespath's semantics (field of a non-object is null, its equality and truthiness rules, the same
function table with its argument checks); anything else returns None and stays interpreted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jmespath import visitor

# jmespath's own equality (so `1 == true` stays false), not re-implemented here.
_equals: Callable[[Any, Any], bool] = visitor._equals  # type: ignore[attr-defined]

if TYPE_CHECKING:
    from connectors.webhook.expressions import Scope

Evaluator = Callable[[Any, "Scope"], Any]


def _is_false(value: Any) -> bool:
    """JMESPath falsiness: "", [], {}, null and false (0 is true)."""
    return value == "" or value == [] or value == {} or value is None or value is False


def compile_node(node: Mapping[str, Any]) -> Evaluator | None:
    """An evaluator for ``node`` (a jmespath AST), or None if it uses an unsupported shape."""
    kind = node.get("type")
    children: list[Mapping[str, Any]] = node.get("children", [])
    if kind == "field":
        return _path([node["value"]])
    if kind == "current":
        return lambda data, scope: data
    if kind == "literal":
        literal = node["value"]
        return lambda data, scope: literal
    if kind == "subexpression" and all(c.get("type") == "field" for c in children):
        return _path([c["value"] for c in children])
    parts = [compile_node(c) for c in children]
    if any(p is None for p in parts):
        return None
    subs: list[Evaluator] = [p for p in parts if p is not None]
    if kind == "subexpression":  # each part runs on the previous one's result

        def chain(data: Any, scope: Scope) -> Any:
            for part in subs:
                data = part(data, scope)
            return data

        return chain
    if kind == "comparator" and node["value"] in ("eq", "ne") and len(subs) == 2:
        left, right = subs
        if node["value"] == "eq":
            return lambda data, scope: _equals(left(data, scope), right(data, scope))
        return lambda data, scope: not _equals(left(data, scope), right(data, scope))
    if kind == "and_expression" and len(subs) == 2:
        first, second = subs

        def both(data: Any, scope: Scope) -> Any:
            value = first(data, scope)
            return value if _is_false(value) else second(data, scope)

        return both
    if kind == "or_expression" and len(subs) == 2:
        first, second = subs

        def either(data: Any, scope: Scope) -> Any:
            value = first(data, scope)
            return second(data, scope) if _is_false(value) else value

        return either
    if kind == "not_expression" and len(subs) == 1:
        (inner,) = subs

        def negate(data: Any, scope: Scope) -> bool:
            value = inner(data, scope)
            if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
                return False  # jmespath: !0 is false
            return not value

        return negate
    if kind == "function_expression":
        name = node["value"]

        def call(data: Any, scope: Scope) -> Any:
            functions = scope.jmespath_options().custom_functions
            args = [arg(data, scope) for arg in subs]
            table: Any = type(functions)
            direct = _untyped(table, name)
            if direct is None:
                return functions.call_function(name, args)
            function, arity, variadic = direct
            if len(args) < arity if variadic else len(args) != arity:
                return functions.call_function(name, args)  # raises jmespath's arity error
            return function(functions, *args)

        return call
    return None


@lru_cache(maxsize=256)
def _untyped(table: Any, name: str) -> tuple[Callable[..., Any], int, bool] | None:
    """`(function, arity, variadic)` of a function whose arguments jmespath would not type-check
    (every hub function: each checks its own), else None. Calling it directly skips
    `call_function`'s generic argument walk, a tenth of evaluating a mapping's expressions;
    the arity rule is jmespath's own (a variadic slot means "this argument or more")."""
    spec = getattr(table, "FUNCTION_TABLE", {}).get(name)
    if spec is None:
        return None
    signature = spec["signature"]
    if any(slot.get("types") for slot in signature):
        return None
    variadic = bool(signature) and bool(signature[-1].get("variadic"))
    return spec["function"], len(signature), variadic


def _path(keys: list[str]) -> Evaluator:
    if len(keys) == 1:
        (key,) = keys
        return lambda data, scope: data.get(key) if isinstance(data, dict) else None

    def walk(data: Any, scope: Scope) -> Any:
        for key in keys:
            if not isinstance(data, dict):
                return None
            data = data.get(key)
        return data

    return walk
