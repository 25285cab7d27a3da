"""The compiled fast path gives exactly what jmespath's interpreter gives (differential test)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jmespath
import pytest

from connectors.webhook.compiled import compile_node
from connectors.webhook.expressions import ExpressionError, Scope, compile_expression

RECEIVED = datetime(2026, 2, 1, 12, 0, 0, tzinfo=UTC)

DATA: list[Any] = [
    {
        "type": "session.completed",
        "n": 1,
        "zero": 0,
        "flag": True,
        "off": False,
        "empty": "",
        "list": [],
        "obj": {},
        "data": {"session": {"id": "s1", "minutes": 45}, "rating": 4, "tags": ["a"]},
    },
    {"type": "other", "n": True, "zero": False, "data": {"session": "not an object"}},
    {"data": None},
    ["not", "an", "object"],
    "text",
    None,
]

# Expressions that must take the fast path, and their semantics must match the interpreter.
COMPILED = [
    "type",
    "data.session.id",
    "data.session.id.deeper",
    "missing.path",
    "@",
    "'literal'",
    "`1`",
    "`true`",
    "type == 'session.completed'",
    "type != 'session.completed'",
    "n == `1`",  # 1 == true is false in jmespath
    "n == `true`",
    "zero == `false`",
    "data.rating != null",  # `null` here is a field named null, as in the presets
    "type == 'session.completed' && data.rating",
    "empty || 'fallback'",
    "list || obj || zero",
    "off && 'never'",
    "!zero",
    "!empty",
    "!flag",
    "!data.session.id",
    "to_datetime('2024-05-03T15:00:00Z')",
    "template('{base}/activities/{tenant}/session/{data.session.id}')",
    "minutes_to_duration(data.session.minutes)",
    "lower(type)",
    "concat(type, '-', 'x')",
    "length(data.tags)",
    "length(n)",  # typed jmespath builtin: a number is a type error
    "lower(type, type)",  # hub functions are called directly: jmespath's arity rules still hold
    "to_datetime()",
    "scale(n, `1`)",
    "now(type)",
    "!(data.session.id)",
]

# Shapes left to the interpreter.
INTERPRETED = ["data.tags[0]", "data.tags[*]", "data | type", "n > `0`", "(data.tags[0]).x"]


def interpreted(expr: str, data: Any, scope: Scope) -> Any:
    return jmespath.compile(expr).search(data, options=scope.jmespath_options())


def outcome(fn: Any) -> tuple[str, Any]:
    try:
        return ("ok", fn())
    except (ExpressionError, jmespath.exceptions.JMESPathError, TypeError, ValueError) as exc:
        return ("error", type(exc).__name__)


@pytest.mark.parametrize("expr", COMPILED)
def test_common_shapes_compile_and_agree_with_the_interpreter(expr: str) -> None:
    assert compile_node(jmespath.compile(expr).parsed) is not None
    for data in DATA:
        fast = Scope("https://h.example/xapi", "webhook:acme", "t1", "acme", RECEIVED, data)
        slow = Scope("https://h.example/xapi", "webhook:acme", "t1", "acme", RECEIVED, data)
        got = outcome(lambda: compile_expression(expr).search(data, fast))  # noqa: B023
        want = outcome(lambda: interpreted(expr, data, slow))  # noqa: B023
        if want[0] == "error":
            assert got[0] == "error", (expr, data, got)
        else:
            assert got == want, (expr, data)
            assert type(got[1]) is type(want[1]), (expr, data)


@pytest.mark.parametrize("expr", INTERPRETED)
def test_other_shapes_stay_interpreted(expr: str) -> None:
    assert compile_node(jmespath.compile(expr).parsed) is None
    data = DATA[0]
    scope = Scope("https://h.example/xapi", "webhook:acme", "t1", "acme", RECEIVED, data)
    assert compile_expression(expr).search(data, scope) == interpreted(expr, data, scope)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("lower(type, type)", r"Expected 1 argument for function lower\(\), received 2"),
        ("to_datetime()", r"Expected at least 1 argument for function to_datetime\(\), received 0"),
        ("now(type)", r"Expected 0 arguments for function now\(\), received 1"),
    ],
)
def test_hub_functions_called_directly_keep_jmespaths_arity_errors(expr: str, message: str) -> None:
    # The fast path calls hub functions without jmespath's call_function; a wrong argument count
    # must still say so (not a Python TypeError about positional arguments).
    scope = Scope("https://h.example/xapi", "webhook:acme", "t1", "acme", RECEIVED, {})
    with pytest.raises(ExpressionError, match=message):
        compile_expression(expr).search({"type": "x"}, scope)
