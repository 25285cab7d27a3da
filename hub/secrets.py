"""Secret references in configuration files, resolved before validation.

Admins never write secrets as literals. Two reference forms are resolved in the parsed YAML tree,
before pydantic sees it:

* ``${VAR}`` and ``${VAR:-default}`` anywhere inside a string value (shell semantics: the default
  applies when the variable is unset *or empty*). ``$${`` stands for a literal ``${``.
* a mapping with the single key ``file``, e.g. ``password: {file: /run/secrets/lrs}``: replaced by
  the file's contents without its trailing newline. A relative path is relative to the config
  directory; the path itself may use ``${VAR}``.

The resolved strings land in fields typed ``SecretStr``, so they never show in ``repr``/``str``.
`resolve_refs` returns the resolved tree plus which key paths held references (to warn about
literal secrets) and every problem found; it never stops at the first one and never puts a
secret value into a message.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

KeyPath = tuple[str | int, ...]
"""A location in a YAML tree: mapping keys and list indexes."""

UNRESOLVED = "<unresolved reference>"
"""What a failed reference becomes: non-empty, so the model does not report the same key again as
missing (errors AT a failed path are dropped; the reference problem is the one to show)."""

_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def format_key_path(path: KeyPath) -> str:
    """Render a key path as admins write it: ``lrs[0].password``, ``settings.secret``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class RefProblem:
    """A reference that could not be resolved, at `path`. The message names no secret value."""

    path: KeyPath
    message: str


@dataclass
class Resolved:
    """The outcome of `resolve_refs`."""

    value: Any
    ref_paths: set[KeyPath] = field(default_factory=set)
    problems: list[RefProblem] = field(default_factory=list)

    @property
    def failed_paths(self) -> set[KeyPath]:
        return {p.path for p in self.problems}


class _Resolver:
    def __init__(self, env: Mapping[str, str], base_dir: Path | None) -> None:
        self.env = env
        self.base_dir = base_dir
        self.out = Resolved(value=None)

    def walk(self, value: Any, path: KeyPath) -> Any:
        if isinstance(value, str):
            return self.string(value, path)
        if isinstance(value, dict):
            if len(value) == 1 and "file" in value:
                return self.file(value["file"], path)
            return {k: self.walk(v, (*path, str(k))) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, (*path, i)) for i, v in enumerate(value)]
        return value

    def string(self, text: str, path: KeyPath) -> str:
        if "$" not in text:
            return text
        parts: list[str] = []
        pos = 0
        for m in _REF.finditer(text):
            parts.append(text[pos : m.start()])
            pos = m.end()
            matched = m.group(0)
            if matched == "$${":
                parts.append("${")
                continue
            if matched == "${":
                self.fail(path, "unterminated '${' reference (write '$${' for a literal '${')")
                return UNRESOLVED
            self.out.ref_paths.add(path)
            expr = m.group(1)
            name, sep, default = expr.partition(":-")
            if not _NAME.match(name):
                self.fail(
                    path,
                    f"invalid reference '${{{expr}}}': use ${{VAR}} or ${{VAR:-default}} "
                    "with a variable name of letters, digits and '_'",
                )
                return UNRESOLVED
            got = self.env.get(name)
            if got is None or (sep and got == ""):
                if sep:
                    got = default
                else:
                    self.fail(
                        path,
                        f"environment variable {name} is not set "
                        f"(set it, or write ${{{name}:-default}})",
                    )
                    return UNRESOLVED
            parts.append(got)
        parts.append(text[pos:])
        return "".join(parts)

    def file(self, raw: Any, path: KeyPath) -> str:
        self.out.ref_paths.add(path)
        if not isinstance(raw, str) or not raw.strip():
            self.fail(path, "a {file: …} reference needs a path string")
            return UNRESOLVED
        before = len(self.out.problems)
        text = self.string(raw, path)
        if len(self.out.problems) > before:
            return UNRESOLVED
        file_path = Path(text).expanduser()
        if not file_path.is_absolute() and self.base_dir is not None:
            file_path = self.base_dir / file_path
        try:
            content = file_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.fail(path, f"secret file {file_path} does not exist")
            return UNRESOLVED
        except (OSError, UnicodeDecodeError) as exc:
            reason = (
                exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            )
            self.fail(path, f"secret file {file_path} cannot be read: {reason}")
            return UNRESOLVED
        if content.endswith("\r\n"):
            return content[:-2]
        if content.endswith("\n"):
            return content[:-1]
        return content

    def fail(self, path: KeyPath, message: str) -> None:
        self.out.problems.append(RefProblem(path, message))


def resolve_refs(value: Any, *, env: Mapping[str, str], base_dir: Path | None = None) -> Resolved:
    """Resolve every ``${VAR}`` and ``{file: …}`` reference in a parsed YAML tree.

    Args:
        value: the tree from ``yaml.safe_load`` (dicts, lists, scalars).
        env: the environment to read variables from.
        base_dir: what relative ``{file: …}`` paths are relative to (the config directory).

    Returns:
        The resolved tree (a failed reference becomes `UNRESOLVED`, and its path is in
        ``failed_paths``), the key paths that held references, and the problems found.
    """
    resolver = _Resolver(env, base_dir)
    resolver.out.value = resolver.walk(value, ())
    return resolver.out


def secret_paths(obj: object, prefix: KeyPath = ()) -> list[KeyPath]:
    """Key paths of every non-empty `SecretStr` value inside a validated model tree."""
    found: list[KeyPath] = []
    if isinstance(obj, SecretStr):
        if obj.get_secret_value():
            found.append(prefix)
    elif isinstance(obj, BaseModel):
        for name, info in type(obj).model_fields.items():
            found.extend(secret_paths(getattr(obj, name), (*prefix, info.alias or name)))
    elif isinstance(obj, Mapping):
        for key, item in obj.items():
            found.extend(secret_paths(item, (*prefix, str(key))))
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            found.extend(secret_paths(item, (*prefix, i)))
    return found


def _is_secret_type(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret_type(a) for a in typing.get_args(annotation))


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_model_types(arg))
    return found


def _string_leaves(value: Any, path: KeyPath) -> list[KeyPath]:
    """Paths of the non-empty strings in a value (``dict[str, SecretStr]``, lists of secrets)."""
    if isinstance(value, str):
        return [path] if value.strip() else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _string_leaves(v, (*path, str(k)))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _string_leaves(v, (*path, i))]
    return []


def literal_secret_paths(
    model: type[BaseModel], *, raw: Any, ref_paths: set[KeyPath], prefix: KeyPath = ()
) -> list[KeyPath]:
    """Key paths where the YAML tree `raw` writes a `SecretStr` field of `model` as a literal.

    Works from the model CLASS, so it also reports in files that fail validation. Values that
    came from a reference (`ref_paths`), empty strings, and defaults the model supplies itself
    are not reported.
    """
    found: list[KeyPath] = []
    if not isinstance(raw, dict):
        return found
    fields = {(info.alias or name): info for name, info in model.model_fields.items()}
    fields.update({name: info for name, info in model.model_fields.items()})
    for key, value in raw.items():
        info = fields.get(key)
        if info is None:
            continue
        path = (*prefix, str(key))
        if _is_secret_type(info.annotation):
            found.extend(p for p in _string_leaves(value, path) if p not in ref_paths)
            continue
        for sub in _model_types(info.annotation)[:1]:
            if isinstance(value, list):
                for i, item in enumerate(value):
                    found.extend(
                        literal_secret_paths(sub, raw=item, ref_paths=ref_paths, prefix=(*path, i))
                    )
            else:
                found.extend(literal_secret_paths(sub, raw=value, ref_paths=ref_paths, prefix=path))
    return found
