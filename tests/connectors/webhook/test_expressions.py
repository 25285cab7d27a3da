"""The expression functions of mapping files, one by one (vendors.md 7.6 E and 8.4 vectors)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.webhook.expressions import (
    Expression,
    ExpressionError,
    Scope,
    compile_expression,
    function_names,
    render_vars,
)

RECEIVED = datetime(2026, 2, 1, 12, 0, 0, tzinfo=UTC)


def scope(root: Any = None) -> Scope:
    return Scope("https://lrs-hub.example.com/xapi/", "webhook:acme", "t1", "acme", RECEIVED, root)


def ev(expr: str, data: Any = None) -> Any:
    data = {} if data is None else data
    return compile_expression(expr).search(data, scope(data))


@pytest.mark.parametrize(
    ("expr", "data", "expected"),
    [
        ("to_datetime(v)", {"v": "2024-05-03T15:00:00Z"}, "2024-05-03T15:00:00Z"),
        (
            "to_datetime(v)",
            {"v": "2021-02-02T10:30:34.9097561-08:00"},
            "2021-02-02T18:30:34.909756Z",
        ),
        (
            "to_datetime(v)",
            {"v": "2015-03-09T19:05:24.552394234+00:00"},
            "2015-03-09T19:05:24.552394Z",
        ),
        (
            "to_datetime(v, 'iso', 'UTC')",
            {"v": "2025-06-05T18:54:38.973"},
            "2025-06-05T18:54:38.973Z",
        ),
        ("to_datetime(v, null, 'UTC')", {"v": "2024-03-13 14:58:26"}, "2024-03-13T14:58:26Z"),
        (
            "to_datetime(v, '%Y-%m-%d %H:%M:%S', 'UTC')",
            {"v": "2024-03-13 14:58:26"},
            "2024-03-13T14:58:26Z",
        ),
        (
            "to_datetime(v, '%Y-%m-%d %H:%M:%S', 'America/Los_Angeles')",
            {"v": "2024-07-01 09:00:00"},
            "2024-07-01T16:00:00Z",
        ),
        (
            "to_datetime(v, '%d/%m/%Y %H:%M%z')",
            {"v": "03/05/2024 17:00+0200"},
            "2024-05-03T15:00:00Z",
        ),
        ("to_datetime(v)", {"v": 1599616881}, "2020-09-09T02:01:21Z"),
        ("to_datetime(v, 'epoch_s')", {"v": "1599616881"}, "2020-09-09T02:01:21Z"),
        ("to_datetime(v, 'epoch_ms')", {"v": 1599616881250}, "2020-09-09T02:01:21.25Z"),
        ("to_datetime(v, 'slack_ts')", {"v": "1595926230.009600"}, "2020-07-28T08:50:30.0096Z"),
        ("to_datetime(v)", {"v": "0000-00-00 00:00:00"}, None),
        ("to_datetime(v)", {"v": ""}, None),
        ("to_datetime(missing)", {}, None),
        ("key_time(v)", {"v": "2021-03-16T18:59:52.2782182Z"}, "2021-03-16T18:59:52Z"),
        ("now()", {}, "2026-02-01T12:00:00Z"),
        ("seconds_to_duration(v)", {"v": 1152}, "PT19M12S"),
        ("seconds_to_duration(v)", {"v": "3.456"}, "PT3.46S"),
        ("seconds_to_duration(v)", {"v": 0}, "PT0S"),
        ("minutes_to_duration(v)", {"v": 45}, "PT45M"),
        ("minutes_to_duration(v)", {"v": 60}, "PT1H"),
        ("minutes_to_duration(v)", {"v": 1.5}, "PT1M30S"),
        ("minutes_to_duration(missing)", {}, None),
        ("iso_duration(v)", {"v": "PT951S"}, "PT15M51S"),
        ("iso_duration(v)", {"v": "P1DT2H3M4S"}, "PT26H3M4S"),
        ("iso_duration(v)", {"v": "P0D"}, "PT0S"),
        ("scale(v, `1`, `5`)", {"v": 4}, {"raw": 4, "min": 1, "max": 5, "scaled": 0.8}),
        ("scale(v, `1`, `5`, 'minmax')", {"v": 4}, {"raw": 4, "min": 1, "max": 5, "scaled": 0.75}),
        (
            "scale(v, `-100`, `100`)",
            {"v": -40},
            {"raw": -40, "min": -100, "max": 100, "scaled": -0.4},
        ),
        ("scale(v, `0`, `10`)", {"v": "7"}, {"raw": 7, "min": 0, "max": 10, "scaled": 0.7}),
        ("scale(missing, `1`, `5`)", {}, None),
        ("percent_to_score(v)", {"v": 85}, {"raw": 85, "min": 0, "max": 100, "scaled": 0.85}),
        ("lower(v)", {"v": "Ada@Example.COM"}, "ada@example.com"),
        ("trim(v)", {"v": "  x y \n"}, "x y"),
        ("lower(missing)", {}, None),
        ("concat(a, '-', b)", {"a": "x", "b": 7}, "x-7"),
        ("concat(a, '-', missing)", {"a": "x"}, None),
        (
            "template('{base}/a/{tenant}/{source}/{vendor}/{x.id}')",
            {"x": {"id": 5}},
            "https://lrs-hub.example.com/xapi/a/t1/webhook:acme/acme/5",
        ),
        ("template('{{literal}} {x}')", {"x": "y"}, "{literal} y"),
        ("template('{x.missing}')", {"x": {}}, None),
        ("template('{@.base}', @)", {"base": "field"}, "field"),
        ("template('{id}', inner)", {"inner": {"id": "i"}, "id": "outer"}, "i"),
        (
            "activity_id('session', s)",
            {"s": "a/b c"},
            "https://lrs-hub.example.com/xapi/activities/webhook:acme/t1/session/a%2Fb%20c",
        ),
        ("activity_id('session', missing)", {}, None),
        ("urlencode(v)", {"v": "a b/c"}, "a%20b%2Fc"),
        ("sha1_mailto(v)", {"v": " Ada@Example.com "}, "72ac10875be5a7770a4f31058ea797edb8e55020"),
        ('map(s, `{"done": "completed"}`, \'other\')', {"s": "done"}, "completed"),
        ('map(s, `{"done": "completed"}`, \'other\')', {"s": "new"}, "other"),
        ('map(s, `{"1": "one"}`)', {"s": 1}, "one"),
        ("map(&id, xs)", {"xs": [{"id": 1}, {"id": 2}]}, [1, 2]),
        ("coalesce(a, b, c)", {"b": 0, "c": 1}, 0),
        ("coalesce(a, b)", {}, None),
        ("default(a, 'x')", {}, "x"),
        ("default(a, 'x')", {"a": False}, False),
        ("exists(a)", {"a": 0}, True),
        ("exists(a)", {}, False),
        ("split(v, ',')", {"v": "a,b,,c"}, ["a", "b", "", "c"]),
        (
            r"regex_extract(v, 'channels\(\'([^\']+)\'\)')",
            {"v": "teams('t1')/channels('19:abc@thread.tacv2')/messages('16')"},
            "19:abc@thread.tacv2",
        ),
        ("regex_extract(v, '(\\d+)-(\\d+)', `2`)", {"v": "x 12-34"}, "34"),
        ("regex_extract(v, 'zzz')", {"v": "abc"}, None),
        ('"$envelope".id', {"$envelope": {"id": "e"}}, "e"),
        ("$envelope.id", {"$envelope": {"id": "e"}}, "e"),
        ("'$envelope'", {}, "$envelope"),
    ],
)
def test_functions(expr: str, data: Any, expected: Any) -> None:
    assert ev(expr, data) == expected


@pytest.mark.parametrize(
    ("expr", "data", "match"),
    [
        ("to_datetime(v)", {"v": "2024-03-13 14:58:26"}, "no UTC offset"),
        ("to_datetime(v, '%Y-%m-%d')", {"v": "2024-03-13"}, "give tz"),
        ("to_datetime(v, '%Y-%m-%d', 'UTC')", {"v": "13.03.2024"}, "does not match"),
        ("to_datetime(v, null, 'Mars/Olympus')", {"v": "2024-03-13 14:58:26"}, "unknown time zone"),
        ("to_datetime(v, 'weird')", {"v": "x"}, "unknown format"),
        ("to_datetime(v)", {"v": "yesterday"}, "unrecognised"),
        ("to_datetime(v)", {"v": {"a": 1}}, "cannot parse"),
        ("to_datetime(v, 'iso', 'UTC', 'x')", {"v": "x"}, "1 to 3"),
        ("seconds_to_duration(v)", {"v": -1}, "negative"),
        ("minutes_to_duration(v)", {"v": "abc"}, "needs a number"),
        ("minutes_to_duration(v)", {"v": True}, "boolean"),
        ("iso_duration(v)", {"v": "PT"}, "invalid"),
        ("iso_duration(v)", {"v": "P1Y"}, "calendar"),
        ("scale(v, `1`, `5`)", {"v": 6}, "outside"),
        ("scale(v, `5`, `1`)", {"v": 3}, "below max"),
        ("scale(v, `-10`, `0`)", {"v": -3}, "positive max"),
        ("scale(v, null, `5`)", {"v": 3}, "min and max"),
        ("scale(v, `1`, `5`, 'log')", {"v": 3}, "unknown formula"),
        ("percent_to_score(v)", {"v": 120}, "outside"),
        ("lower(v)", {"v": 5}, "needs a string"),
        ("concat(a)", {"a": [1]}, "cannot use"),
        ("template(v)", {"v": 1}, "format string"),
        ("template('{a')", {}, "unbalanced"),
        ("map(v, 'not a table')", {"v": "x"}, "object table"),
        ("split(v, '')", {"v": "abc"}, "separator"),
        ("regex_extract(v, '(')", {"v": "abc"}, "regex_extract"),
        ("regex_extract(v, '(a)', `5`)", {"v": "abc"}, "regex_extract"),
        ("abs(v)", {"v": "x"}, "invalid type"),
    ],
)
def test_function_errors(expr: str, data: Any, match: str) -> None:
    with pytest.raises(ExpressionError, match=match):
        ev(expr, data)


def test_now_flags_the_scope() -> None:
    s = scope()
    compile_expression("to_datetime(a) || now()").search({"a": "2024-01-01T00:00:00Z"}, s)
    assert s.inferred_now is False
    compile_expression("to_datetime(a) || now()").search({}, s)
    assert s.inferred_now is True


@pytest.mark.parametrize("text", ["a ==", "eval(x)", "open('/etc/passwd')", "`{`", "`foo`"])
def test_bad_expressions_fail_to_compile(text: str) -> None:
    with pytest.raises(ExpressionError):
        Expression(text)


def test_registry_has_the_documented_functions() -> None:
    documented = {
        "to_datetime", "key_time", "now", "seconds_to_duration", "minutes_to_duration",
        "iso_duration", "scale", "percent_to_score", "lower", "trim", "urlencode", "concat",
        "template", "activity_id", "sha1_mailto", "map", "coalesce", "default", "exists",
        "split", "regex_extract",
    }  # fmt: skip
    assert documented <= function_names()
    assert {"length", "join", "max"} <= function_names()  # the standard ones stay


def test_render_vars_only_fills_hub_variables() -> None:
    assert (
        render_vars("{base}/extensions/x", scope())
        == "https://lrs-hub.example.com/xapi/extensions/x"
    )
    with pytest.raises(ExpressionError, match="unknown placeholder"):
        render_vars("{base}/{data.x}", scope())
