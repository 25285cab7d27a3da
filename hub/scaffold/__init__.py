"""Scaffolding of third-party connector packages (``lxhub connectors new NAME``).

The templates are plain files shipped as package data under ``hub/scaffold/templates/``
(``common/`` for every connector, ``webhook/`` or ``polling/`` per capability), named ``*.tmpl``.
They hold ``{{placeholder}}`` markers that `render` fills from a fixed table of values derived
from the validated connector name: a single pass with no expressions, loops or attribute access
(unlike Jinja, a template cannot run code, and a value is never re-scanned for markers).

`scaffold` writes a project whose own tests pass as generated: a ``pyproject.toml`` declaring the
entry point, the connector class, its settings model, a mapper for ``session.completed``, a
golden fixture pair and a conformance test class using `hub.testing`. The golden statement's id
and activity IRI depend on the connector name, so they are computed here with the same functions
the mapping uses (`hub.xapi.ids`) against the kit's base IRI.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Literal

from hub.errors import HubError
from hub.xapi.ids import activity_iri, natural_key, statement_id, statement_namespace

__all__ = [
    "CAPABILITIES",
    "KIT_BASE_IRI",
    "Capability",
    "ProjectNames",
    "ScaffoldError",
    "TemplateFile",
    "default_dir",
    "names_for",
    "plan",
    "relative",
    "render",
    "scaffold",
    "template_files",
    "validate_name",
]

Capability = Literal["webhook", "polling"]
CAPABILITIES: tuple[Capability, ...] = ("webhook", "polling")

KIT_BASE_IRI = "https://lrs-hub.example.com/xapi"
"""`hub.testing.BASE_IRI`, which the kit maps golden files with (kept literal here so the CLI
does not import pytest; a test asserts both are equal)."""

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*\Z")
MAX_NAME = 24
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

# The fixture event of the templates (tests/fixtures/events/session_completed.json): the natural
# key below must be the one `mapping.py.tmpl` builds for it.
_SAMPLE_TENANT = "acme"
_SAMPLE_KEY = (("session", "ses_7431"), ("user", "usr_1001"))
_SAMPLE_SESSION = "ses_7431"


class ScaffoldError(HubError):
    """The connector package cannot be generated as asked (bad name, existing files)."""


@dataclass(frozen=True)
class ProjectNames:
    """Every name derived from a connector name such as ``acme-coach``."""

    name: str  # acme-coach: entry-point name, `Connector.name` and `source`
    dist_name: str  # lxhub-connector-acme-coach
    package: str  # lxhub_connector_acme_coach
    camel: str  # AcmeCoach: class-name stem
    platform: str  # Acme Coach: product name for context.platform

    @property
    def header_stem(self) -> str:
        """``X-Acme-Coach``: prefix of the generated webhook's signature headers."""
        return "X-" + "-".join(part.capitalize() for part in self.name.split("-"))


@dataclass(frozen=True)
class TemplateFile:
    """One template and the project path it renders to (the path may hold placeholders)."""

    template: str  # path under templates/, e.g. "webhook/connector.py.tmpl"
    target: str  # e.g. "src/{{package}}/connector.py"


_COMMON = (
    TemplateFile("common/pyproject.toml.tmpl", "pyproject.toml"),
    TemplateFile("common/README.md.tmpl", "README.md"),
    TemplateFile("common/gitignore.tmpl", ".gitignore"),
    TemplateFile("common/init.py.tmpl", "src/{{package}}/__init__.py"),
    TemplateFile("common/py.typed.tmpl", "src/{{package}}/py.typed"),
    TemplateFile("common/mapping.py.tmpl", "src/{{package}}/mapping.py"),
    TemplateFile("common/expected.json.tmpl", "tests/fixtures/expected/session_completed.json"),
)
_PER_CAPABILITY = (
    ("settings.py.tmpl", "src/{{package}}/settings.py"),
    ("connector.py.tmpl", "src/{{package}}/connector.py"),
    ("test_conformance.py.tmpl", "tests/test_conformance.py"),
    ("events.json.tmpl", "tests/fixtures/events/session_completed.json"),
)
_POLLING_ONLY = tuple(
    TemplateFile(f"polling/page{n}.json.tmpl", f"tests/fixtures/api/page{n}.json")
    for n in (1, 2, 3)
)

_SUMMARIES: Mapping[Capability, str] = {
    "webhook": "signed webhooks (HMAC-SHA256) in, xAPI statements out.",
    "polling": "polls the events API one page at a time, xAPI statements out.",
}


def validate_name(name: str) -> str:
    """Return `name` if it is a valid connector name, else raise `ScaffoldError` saying why.

    Valid: lower-case ASCII letters and digits in words joined by single hyphens, starting with
    a letter, at most 40 characters (``acme-coach``, ``docebo``, ``coach2go``).
    """
    if name.startswith("lxhub-connector-"):
        rest = name.removeprefix("lxhub-connector-")
        raise ScaffoldError(
            f"give the connector name, not the distribution name: {rest!r} "
            f"(the package will be called lxhub-connector-{rest})"
        )
    if not NAME_PATTERN.match(name) or len(name) > MAX_NAME:
        hint = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        hint = re.sub(r"^[0-9-]+", "", hint)[:MAX_NAME].strip("-")
        suggestion = f"; did you mean {hint!r}?" if hint and NAME_PATTERN.match(hint) else ""
        raise ScaffoldError(
            f"invalid connector name {name!r}: use lower-case letters and digits in words joined "
            f"by single hyphens, starting with a letter, at most {MAX_NAME} characters "
            f"(e.g. 'acme-coach'){suggestion}"
        )
    return name


def names_for(name: str) -> ProjectNames:
    """The derived names of a (validated) connector name."""
    validate_name(name)
    parts = name.split("-")
    camel = "".join(part.capitalize() for part in parts)
    package = "lxhub_connector_" + name.replace("-", "_")
    return ProjectNames(
        name=name,
        dist_name=f"lxhub-connector-{name}",
        package=package,
        camel=camel,
        platform=" ".join(part.capitalize() for part in parts),
    )


def default_dir(name: str) -> Path:
    """``./lxhub-connector-NAME``, where the package goes without ``--dir``."""
    return Path(f"lxhub-connector-{name}")


def render(template: str, values: Mapping[str, str], *, where: str = "template") -> str:
    """Replace every ``{{key}}`` in `template` with ``values[key]``, in one pass.

    Raises `ScaffoldError` for a placeholder without a value and for stray ``{{``/``}}`` (a
    malformed placeholder), so nothing unrendered can reach a generated file.
    """
    used = {m.group(1) for m in _PLACEHOLDER.finditer(template)}
    missing = sorted(used - set(values))
    if missing:
        raise ScaffoldError(f"{where}: no value for placeholder(s) {', '.join(missing)}")
    rest = _PLACEHOLDER.sub("", template)
    if "{{" in rest or "}}" in rest:
        raise ScaffoldError(f"{where}: malformed placeholder ('{{{{' or '}}}}' left over)")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _hub_version() -> str:
    try:
        release = metadata.version("lxhub")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0.1"
    return ".".join(release.split(".")[:2])


def _config_example(names: ProjectNames, capability: Capability) -> str:
    env = names.name.upper().replace("-", "_")
    lines = [
        f"id: {names.name}-{_SAMPLE_TENANT}  # the instance; webhooks arrive at /webhooks/<id>",
        f"type: {names.name}  # the connector (entry-point name)",
        "enabled: true",
    ]
    if capability == "polling":
        lines.append("schedule: {interval: 15m}")
    lines += [
        "settings:",
        f"  tenant: {_SAMPLE_TENANT}",
        f"  api_base_url: https://api.{names.name}.example",
        f"  api_token: ${{{env}_API_TOKEN}}",
    ]
    if capability == "webhook":
        lines.append(f"  signing_secret: ${{{env}_SIGNING_SECRET}}")
    return "\n".join(lines)


def values_for(names: ProjectNames, capability: Capability) -> dict[str, str]:
    """The placeholder table of one project."""
    key = natural_key(
        source=names.name, tenant=_SAMPLE_TENANT, verb_key="attended", parts=_SAMPLE_KEY
    )
    return {
        "name": names.name,
        "dist_name": names.dist_name,
        "package": names.package,
        "camel": names.camel,
        "platform": names.platform,
        "capability": capability,
        "capability_summary": _SUMMARIES[capability],
        "signature_header": f"{names.header_stem}-Signature",
        "timestamp_header": f"{names.header_stem}-Timestamp",
        "hub_version": _hub_version(),
        "config_example": _config_example(names, capability),
        "natural_key": key,
        "statement_id": str(statement_id(statement_namespace(KIT_BASE_IRI), key)),
        "activity_id": activity_iri(
            KIT_BASE_IRI,
            source=names.name,
            tenant=_SAMPLE_TENANT,
            kind="session",
            source_id=_SAMPLE_SESSION,
        ),
    }


def template_files(capability: Capability) -> tuple[TemplateFile, ...]:
    """The templates of a project with this capability, and where each one renders to."""
    own = tuple(TemplateFile(f"{capability}/{t}", target) for t, target in _PER_CAPABILITY)
    return _COMMON + own + (_POLLING_ONLY if capability == "polling" else ())


def plan(name: str, capability: Capability = "webhook") -> dict[str, str]:
    """Render the whole project in memory: relative path -> file text. Writes nothing."""
    if capability not in CAPABILITIES:
        raise ScaffoldError(f"unknown capability {capability!r}; use one of {CAPABILITIES}")
    names = names_for(name)
    values = values_for(names, capability)
    root = resources.files("hub.scaffold").joinpath("templates")
    files: dict[str, str] = {}
    for item in template_files(capability):
        text = root.joinpath(*item.template.split("/")).read_text(encoding="utf-8")
        target = render(item.target, values, where=item.target)
        files[target] = render(text, values, where=item.template)
    return files


def scaffold(
    name: str,
    *,
    dest: Path,
    capability: Capability = "webhook",
    force: bool = False,
) -> list[Path]:
    """Write a new connector project for `name` into `dest`; return the files written.

    Refuses a `dest` that is a file, or a non-empty directory unless `force` (which overwrites
    the generated files and leaves any other file alone).
    """
    files = plan(name, capability)  # render everything before touching the disk
    if dest.exists() and not dest.is_dir():
        raise ScaffoldError(f"{dest} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        clashes = sorted(p for p in files if (dest / p).exists())
        detail = f" (would overwrite {', '.join(clashes[:3])}{'…' if len(clashes) > 3 else ''})"
        raise ScaffoldError(
            f"{dest} already exists and is not empty{detail if clashes else ''}; "
            "choose another --dir, or pass --force to overwrite the generated files"
        )
    written: list[Path] = []
    for rel, text in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def relative(paths: Sequence[Path], root: Path) -> list[str]:
    """`paths` relative to `root`, POSIX style, for display."""
    return [p.relative_to(root).as_posix() for p in paths]
