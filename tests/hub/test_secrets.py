"""Secret references: ${VAR}, ${VAR:-default}, {file: path}; errors name the variable or path."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr

from hub.secrets import format_key_path, literal_secret_paths, resolve_refs, secret_paths


def test_env_var_and_default_and_embedding() -> None:
    tree = {
        "a": "${TOKEN}",
        "b": "${MISSING:-fallback}",
        "c": "Bearer ${TOKEN}!",
        "d": ["x", {"e": "${EMPTY:-used-when-empty}"}],
        "f": 42,
        "g": "plain",
    }
    res = resolve_refs(tree, env={"TOKEN": "t0k", "EMPTY": ""})
    assert res.problems == []
    assert res.value == {
        "a": "t0k",
        "b": "fallback",
        "c": "Bearer t0k!",
        "d": ["x", {"e": "used-when-empty"}],
        "f": 42,
        "g": "plain",
    }
    assert res.ref_paths == {("a",), ("b",), ("c",), ("d", 1, "e")}


def test_default_may_be_empty_and_escape_keeps_literal() -> None:
    res = resolve_refs({"a": "${NOPE:-}", "b": "cost: $${NOT_A_REF} and $5"}, env={})
    assert res.problems == []
    assert res.value == {"a": "", "b": "cost: ${NOT_A_REF} and $5"}


def test_missing_variable_is_an_error_naming_it() -> None:
    res = resolve_refs({"lrs": [{"password": "${LRS_PASSWORD}"}]}, env={})
    assert len(res.problems) == 1
    problem = res.problems[0]
    assert problem.path == ("lrs", 0, "password")
    assert "LRS_PASSWORD" in problem.message
    assert res.failed_paths == {("lrs", 0, "password")}
    assert format_key_path(problem.path) == "lrs[0].password"


def test_every_problem_is_collected() -> None:
    res = resolve_refs({"a": "${A}", "b": "${B}", "c": "${bad name}", "d": "${"}, env={})
    assert [p.path for p in res.problems] == [("a",), ("b",), ("c",), ("d",)]
    assert "invalid reference" in res.problems[2].message
    assert "unterminated" in res.problems[3].message


def test_file_reference_strips_one_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret\n")
    (tmp_path / "crlf").write_text("two\n\r\n", newline="")
    res = resolve_refs(
        {"a": {"file": str(tmp_path / "secret")}, "b": {"file": "crlf"}},
        env={},
        base_dir=tmp_path,
    )
    assert res.problems == []
    assert res.value == {"a": "s3cret", "b": "two\n"}
    assert res.ref_paths == {("a",), ("b",)}


def test_file_path_may_use_env(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("v")
    res = resolve_refs({"a": {"file": "${DIR}/x"}}, env={"DIR": str(tmp_path)})
    assert res.value == {"a": "v"}


def test_missing_or_unreadable_file_names_the_path(tmp_path: Path) -> None:
    folder = tmp_path / "a-directory"
    folder.mkdir()
    res = resolve_refs(
        {"a": {"file": "/run/secrets/nope"}, "b": {"file": str(folder)}, "c": {"file": 3}},
        env={},
    )
    messages = {p.path: p.message for p in res.problems}
    assert "/run/secrets/nope" in messages[("a",)]
    assert "does not exist" in messages[("a",)]
    assert str(folder) in messages[("b",)]
    assert "cannot be read" in messages[("b",)]
    assert "path string" in messages[("c",)]


def test_a_mapping_with_more_keys_is_not_a_file_reference() -> None:
    res = resolve_refs({"a": {"file": "x", "mode": "y"}}, env={})
    assert res.value == {"a": {"file": "x", "mode": "y"}}
    assert res.ref_paths == set()


def test_messages_never_contain_values() -> None:
    res = resolve_refs({"a": "${SET} ${UNSET}"}, env={"SET": "hunter2"})
    assert res.problems
    assert all("hunter2" not in p.message for p in res.problems)


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: SecretStr | None = None


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: SecretStr
    default_secret: SecretStr = SecretStr("from-the-model")
    items: list[_Inner] = []


def test_literal_secret_paths_skip_references_and_model_defaults() -> None:
    raw = {"password": "literal", "items": [{"token": "${T}"}, {"token": "lit"}, {"token": ""}]}
    res = resolve_refs(raw, env={"T": "x"})
    model = _Outer.model_validate(res.value)
    assert sorted(secret_paths(model), key=str) == sorted(
        [("password",), ("default_secret",), ("items", 0, "token"), ("items", 1, "token")], key=str
    )
    found = literal_secret_paths(_Outer, raw=raw, ref_paths=res.ref_paths)
    assert found == [("password",), ("items", 1, "token")]
    assert "literal" not in repr(model)
    assert "literal" not in str(model)


def test_literal_secret_paths_work_on_invalid_trees() -> None:
    raw = {"password": "literal", "unknown": "x", "items": "not-a-list"}
    assert literal_secret_paths(_Outer, raw=raw, ref_paths=set()) == [("password",)]
