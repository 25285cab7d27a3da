"""`lxhub connectors new NAME` (hub.scaffold + hub.commands.scaffold_cmd).

Unit tests check names, the renderer, overwrite protection and that every placeholder is
rendered; the golden statement of the generated project is checked in-process. The integration
test installs a generated project and runs its own tests in a subprocess: they must pass as
generated.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hub.commands.scaffold_cmd import new_cmd
from hub.events import SourceEvent
from hub.registry import find
from hub.scaffold import (
    CAPABILITIES,
    KIT_BASE_IRI,
    ScaffoldError,
    names_for,
    plan,
    render,
    scaffold,
    template_files,
    validate_name,
)
from hub.testing import BASE_IRI, StaticActorResolver
from hub.testing.suite import context_factory
from hub.xapi import canonical_bytes

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "lxhub_connector_acme_coach"
TEMPLATES = ROOT / "hub" / "scaffold" / "templates"


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["acme-coach", "docebo", "coach2go", "a1-b2-c3", "x" * 24])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("Acme-Coach", "did you mean 'acme-coach'?"),
        ("acme_coach", "did you mean 'acme-coach'?"),
        ("acme coach", "did you mean 'acme-coach'?"),
        ("-acme", "did you mean 'acme'?"),
        ("acme-", "did you mean 'acme'?"),
        ("acme--coach", "did you mean 'acme-coach'?"),
        ("2coach", "did you mean 'coach'?"),
        ("x" * 25, "at most 24 characters"),
        ("", "lower-case letters and digits"),
    ],
)
def test_invalid_names_are_explained(name: str, hint: str) -> None:
    with pytest.raises(ScaffoldError, match="invalid connector name") as info:
        validate_name(name)
    assert hint in str(info.value)


def test_distribution_name_is_refused_with_the_connector_name() -> None:
    with pytest.raises(ScaffoldError, match="not the distribution name: 'acme-coach'"):
        validate_name("lxhub-connector-acme-coach")


def test_derived_names() -> None:
    names = names_for("acme-coach")
    assert names.dist_name == "lxhub-connector-acme-coach"
    assert names.package == PACKAGE
    assert names.camel == "AcmeCoach"
    assert names.platform == "Acme Coach"
    assert names.header_stem == "X-Acme-Coach"


# --- the renderer ---------------------------------------------------------------------------


def test_render_fills_placeholders_in_one_pass() -> None:
    text = render("a {{x}} b {{ y }}", {"x": "{{y}}", "y": "2"})
    assert text == "a {{y}} b 2"  # a value is inserted verbatim, never re-scanned


def test_render_rejects_unknown_and_malformed_placeholders() -> None:
    with pytest.raises(ScaffoldError, match="no value for placeholder"):
        render("{{nope}}", {})
    with pytest.raises(ScaffoldError, match="malformed placeholder"):
        render("{{ not-a-name }}", {})
    with pytest.raises(ScaffoldError, match="malformed placeholder"):
        render("dangling }}", {})


def test_kit_base_iri_matches_the_kit() -> None:
    # The golden statement id is computed against the kit's base IRI.
    assert KIT_BASE_IRI == BASE_IRI


# --- the generated project ------------------------------------------------------------------


@pytest.mark.parametrize("capability", CAPABILITIES)
def test_every_placeholder_is_rendered(capability: str) -> None:
    files = plan("acme-coach", capability)  # type: ignore[arg-type]
    assert files
    for rel, text in files.items():
        for marker in ("{{", "}}"):
            assert marker not in rel, rel
            assert marker not in text, f"{rel} has an unrendered placeholder"
        if rel.endswith(".py"):
            compile(text, rel, "exec")
        elif rel.endswith(".json"):
            json.loads(text)


def test_every_shipped_template_is_used() -> None:
    shipped = {p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*") if p.is_file()}
    used = {f.template for capability in CAPABILITIES for f in template_files(capability)}
    assert shipped == used
    assert all(name.endswith(".tmpl") for name in shipped)  # matched by the package-data glob


@pytest.mark.parametrize("capability", CAPABILITIES)
def test_layout_and_entry_point(capability: str) -> None:
    files = plan("acme-coach", capability)  # type: ignore[arg-type]
    expected = {
        "pyproject.toml",
        "README.md",
        ".gitignore",
        f"src/{PACKAGE}/__init__.py",
        f"src/{PACKAGE}/py.typed",
        f"src/{PACKAGE}/connector.py",
        f"src/{PACKAGE}/settings.py",
        f"src/{PACKAGE}/mapping.py",
        "tests/test_conformance.py",
        "tests/fixtures/events/session_completed.json",
        "tests/fixtures/expected/session_completed.json",
    }
    assert expected <= set(files)
    project = tomllib.loads(files["pyproject.toml"])
    assert project["project"]["name"] == "lxhub-connector-acme-coach"
    assert any(dep.startswith("lxhub") for dep in project["project"]["dependencies"])
    assert project["project"]["entry-points"]["lxhub.connectors"] == {
        "acme-coach": f"{PACKAGE}.connector:AcmeCoachConnector"
    }
    base = "WebhookConformance" if capability == "webhook" else "PollingConformance"
    assert f"class TestAcmeCoach({base}):" in files["tests/test_conformance.py"]


@pytest.fixture
def generated_package(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Import the package generated for `request.param` (capability) from its src dir."""
    capability = request.param
    scaffold("acme-coach", dest=tmp_path / "proj", capability=capability)
    sys.path.insert(0, str(tmp_path / "proj" / "src"))
    try:
        yield importlib.import_module(f"{PACKAGE}.connector"), tmp_path / "proj", capability
    finally:
        sys.path.remove(str(tmp_path / "proj" / "src"))
        for module in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[module]


@pytest.mark.parametrize("generated_package", CAPABILITIES, indirect=True)
def test_generated_mapping_reproduces_its_golden_file(generated_package: Any) -> None:
    module, project, capability = generated_package
    connector_cls = module.AcmeCoachConnector
    raw = json.loads((project / "tests/fixtures/events/session_completed.json").read_text())
    payload = raw if capability == "webhook" else raw[0]["payload"]
    expected = json.loads((project / "tests/fixtures/expected/session_completed.json").read_text())
    event = SourceEvent(
        instance_id="test",
        event_type=payload["type"],
        payload=payload,
        received_at=datetime(2025, 7, 1, 12, tzinfo=UTC),
    )

    class _Facts:  # what context_factory reads from a connector instance
        source, platform = connector_cls.source, connector_cls.platform
        name, version = connector_cls.name, connector_cls.version
        tenant, account_home_page = "acme", "https://acme.acme-coach.example"

    make = context_factory(_Facts(), actors=StaticActorResolver("mbox"))  # type: ignore[arg-type]
    statements = connector_cls.mapper.map(event, make(event))
    assert [json.loads(canonical_bytes(s, version="1.0.3")) for s in statements] == expected


# --- the command ----------------------------------------------------------------------------


def test_new_writes_the_project_into_the_default_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(new_cmd, ["acme-coach"])
    assert result.exit_code == 0, result.output
    project = tmp_path / "lxhub-connector-acme-coach"
    assert (project / "pyproject.toml").is_file()
    assert (project / f"src/{PACKAGE}/connector.py").is_file()
    assert "created webhook connector 'acme-coach'" in result.output
    assert "pip install -e '.[test]'" in result.output


def test_new_with_bad_name_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(new_cmd, ["Acme_Coach", "--dir", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "invalid connector name 'Acme_Coach'" in result.output
    assert "did you mean 'acme-coach'?" in result.output
    assert not (tmp_path / "x").exists()


def test_new_with_unknown_capability_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(new_cmd, ["acme-coach", "--capability", "carrier-pigeon"])
    assert result.exit_code == 2
    assert "'webhook'" in result.output
    assert "'polling'" in result.output


def test_new_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    dest = tmp_path / "proj"
    dest.mkdir()
    (dest / "pyproject.toml").write_text("# mine\n")
    (dest / "NOTES.md").write_text("keep me\n")

    refused = CliRunner().invoke(new_cmd, ["acme-coach", "--dir", str(dest)])
    assert refused.exit_code == 1
    assert "already exists and is not empty" in refused.output
    assert "pyproject.toml" in refused.output
    assert "--force" in refused.output
    assert (dest / "pyproject.toml").read_text() == "# mine\n"
    assert not (dest / "src").exists()

    forced = CliRunner().invoke(new_cmd, ["acme-coach", "--dir", str(dest), "--force"])
    assert forced.exit_code == 0, forced.output
    assert "lxhub-connector-acme-coach" in (dest / "pyproject.toml").read_text()
    assert (dest / "NOTES.md").read_text() == "keep me\n"  # not ours: left alone


def test_new_into_an_empty_existing_dir_needs_no_force(tmp_path: Path) -> None:
    result = CliRunner().invoke(new_cmd, ["acme-coach", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_new_refuses_a_file_as_dir(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ScaffoldError, match="is not a directory"):
        scaffold("acme-coach", dest=target, force=True)


# --- the generated project's own tests pass (installs a package: integration) ----------------


def _can_build_offline() -> bool:
    """True when the venv's setuptools can build a wheel without an isolated build env."""
    if importlib.util.find_spec("wheel") is not None:
        return True
    major, minor = (int(p) for p in metadata.version("setuptools").split(".")[:2])
    return (major, minor) >= (70, 1)  # bdist_wheel moved into setuptools in 70.1


@pytest.mark.integration
@pytest.mark.parametrize("capability", CAPABILITIES)
def test_generated_project_tests_pass_as_generated(tmp_path: Path, capability: str) -> None:
    project = tmp_path / "lxhub-connector-acme-coach"
    result = CliRunner().invoke(
        new_cmd, ["acme-coach", "--dir", str(project), "--capability", capability]
    )
    assert result.exit_code == 0, result.output

    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site)]
    if _can_build_offline():
        pip.append("--no-build-isolation")
    installed = subprocess.run(
        [*pip, str(project)], capture_output=True, text=True, timeout=300, check=False
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    # The registry finds the plugin through its entry point, without importing it.
    found = [p for p in find(path=[str(site)]) if p.name == "acme-coach"]
    assert [(p.value, p.dist_name) for p in found] == [
        (f"{PACKAGE}.connector:AcmeCoachConnector", "lxhub-connector-acme-coach")
    ]

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    # No `-p hub.testing.pytest_plugin`: lxhub is installed here, so its pytest11 entry point
    # already loads the plugin, and naming it again is a "registered twice" error.
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    summary = report.strip().splitlines()[-1]
    assert " passed" in summary, summary
    assert "failed" not in summary, summary
    assert "error" not in summary, summary

    # ... and `lxhub connectors list` shows it, loaded and valid (not BROKEN).
    listed = subprocess.run(
        [sys.executable, "-c", "from hub.cli import main; main()", "connectors", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("acme-coach "))
    assert row.split() == ["acme-coach", capability, "lxhub-connector-acme-coach", "0.1.0"]
