"""hub.registry: find (no imports) -> load (errors name the package) -> validate (the contract)."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from hub.connector import Capability
from hub.errors import PluginLoadError
from hub.registry import (
    FoundPlugin,
    LoadedConnector,
    Registry,
    build_registry,
    find,
    get_registry,
    load,
    validate,
)

REPO = Path(__file__).resolve().parents[2]
SAMPLE_PLUGIN = REPO / "tests" / "plugins" / "lxhub-connector-sample"


def _load_helpers() -> ModuleType:
    name = "_sample_connectors"
    if name not in sys.modules:  # shared by the config, registry and CLI tests
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


sc = _load_helpers()


def fake_dist(root: Path, name: str, version: str, entry_points: dict[str, str]) -> None:
    """An installed distribution's metadata, as pip would leave it (no code needed)."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = ["[lxhub.connectors]", *(f"{k} = {v}" for k, v in entry_points.items())]
    lines += ["", "[console_scripts]", "other = x:y"]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def found(name: str, value: str, dist: str = "lxhub-connector-test") -> FoundPlugin:
    return FoundPlugin(name, value, dist, "1.2.3")


# -- find ------------------------------------------------------------------------------------------


def test_find_reads_metadata_sorted_without_importing(tmp_path: Path) -> None:
    fake_dist(tmp_path, "lxhub-connector-b", "2.0", {"zeta": "no_such_module_b:Zeta"})
    fake_dist(tmp_path, "lxhub-connector-a", "1.0", {"alpha": "no_such_module_a:Alpha"})
    result = find(path=[str(tmp_path)])
    assert result == [
        FoundPlugin("alpha", "no_such_module_a:Alpha", "lxhub-connector-a", "1.0"),
        FoundPlugin("zeta", "no_such_module_b:Zeta", "lxhub-connector-b", "2.0"),
    ]
    assert "no_such_module_a" not in sys.modules  # nothing imported


def test_duplicate_names_from_two_packages_are_an_error(tmp_path: Path) -> None:
    fake_dist(tmp_path, "lxhub-connector-one", "1.0", {"slack": "one:Slack"})
    fake_dist(tmp_path, "lxhub-connector-two", "3.1", {"slack": "two:Slack"})
    with pytest.raises(PluginLoadError) as exc:
        find(path=[str(tmp_path)])
    message = str(exc.value)
    assert "duplicate connector names" in message
    assert "lxhub-connector-one 1.0 (one:Slack)" in message
    assert "lxhub-connector-two 3.1 (two:Slack)" in message


def test_same_distribution_twice_on_the_path_is_one_plugin(tmp_path: Path) -> None:
    fake_dist(tmp_path / "a", "lxhub-connector-x", "1.0", {"x": "x:X"})
    fake_dist(tmp_path / "b", "lxhub_connector_x", "0.9", {"x": "x:X"})
    assert find(path=[str(tmp_path / "a"), str(tmp_path / "b")]) == [
        FoundPlugin("x", "x:X", "lxhub-connector-x", "1.0")
    ]


# -- load ------------------------------------------------------------------------------------------


def test_load_imports_the_class() -> None:
    lc = load(found("webhook", "_sample_connectors:StandInWebhookConnector"))
    assert lc.cls is sc.StandInWebhookConnector
    assert lc.capabilities == frozenset({Capability.WEBHOOK})
    assert (lc.dist_name, lc.dist_version) == ("lxhub-connector-test", "1.2.3")
    assert validate(lc) is lc


def test_load_wraps_import_errors_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lxhub_test_exploding_plugin.py").write_text("raise RuntimeError('kaboom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginLoadError) as exc:
        load(found("boom", "lxhub_test_exploding_plugin:Boom", dist="lxhub-connector-boom"))
    assert exc.value.plugin == "boom (lxhub-connector-boom 1.2.3)"
    assert "boom = lxhub_test_exploding_plugin:Boom" in str(exc.value)
    assert "RuntimeError: kaboom" in str(exc.value)

    with pytest.raises(PluginLoadError, match="ModuleNotFoundError"):
        load(found("gone", "lxhub_no_such_module_anywhere:Gone"))
    with pytest.raises(PluginLoadError, match="AttributeError"):
        load(found("gone", "_sample_connectors:NoSuchClass"))
    with pytest.raises(PluginLoadError, match="is not a class"):
        load(found("gone", "_sample_connectors:mapper"))


# -- validate --------------------------------------------------------------------------------------


def _validate(cls: type, name: str | None = None) -> None:
    validate(
        LoadedConnector(
            name=name or getattr(cls, "name", "x"),
            cls=cls,
            dist_name="lxhub-connector-test",
            dist_version="1.2.3",
            capabilities=frozenset(),
        )
    )


@pytest.mark.parametrize(
    ("cls_name", "entry_name", "message"),
    [
        ("NotAConnector", None, "is not a hub.Connector subclass"),
        ("BadNameConnector", "webhook", "name is 'other-name' but the entry point is named"),
        ("BadSettingsConnector", None, "must forbid unknown keys"),
        ("NoCapabilityConnector", None, "declares no capability"),
        ("EmptyMapperConnector", None, "mapper has no handler"),
        ("NoSourceConnector", None, "source must be declared"),
        ("AbstractConnector", None, "abstract methods not implemented: parse, verify"),
    ],
)
def test_validate_rejects_contract_violations(
    cls_name: str, entry_name: str | None, message: str
) -> None:
    with pytest.raises(PluginLoadError) as exc:
        _validate(getattr(sc, cls_name), entry_name)
    assert message in str(exc.value)
    assert "lxhub-connector-test 1.2.3" in str(exc.value)


def test_validate_reports_every_violation_at_once() -> None:
    with pytest.raises(PluginLoadError) as exc:
        _validate(sc.NoSourceConnector, "renamed")
    assert "entry point is named 'renamed'" in str(exc.value)
    assert "source must be declared" in str(exc.value)
    assert "platform must be declared" in str(exc.value)


def test_empty_mapper_is_fine_when_map_is_overridden() -> None:
    _validate(sc.OwnMapConnector)


# -- Registry and build_registry -------------------------------------------------------------------


def test_registry_from_classes_is_an_immutable_mapping() -> None:
    reg = Registry.from_classes([sc.StandInWebhookConnector, sc.SamplePollConnector])
    assert list(reg) == ["sample-poll", "webhook"]
    assert reg["sample-poll"].capabilities == frozenset({Capability.POLLING})
    assert reg.broken == {}
    with pytest.raises(TypeError):
        reg["x"] = reg["webhook"]  # type: ignore[index]
    with pytest.raises(TypeError):
        reg.broken["x"] = None  # type: ignore[index]
    with pytest.raises(PluginLoadError, match="duplicate connector name"):
        Registry.from_classes([sc.StandInWebhookConnector, sc.StandInWebhookConnector])
    with pytest.raises(PluginLoadError, match="no capability"):
        Registry.from_classes([sc.NoCapabilityConnector])


PLUGINS = [
    found("webhook", "_sample_connectors:StandInWebhookConnector"),
    found("sample-poll", "_sample_connectors:SamplePollConnector"),
    found("broken", "lxhub_no_such_module_anywhere:Broken", dist="lxhub-connector-broken"),
    found("empty-mapper", "_sample_connectors:EmptyMapperConnector"),
]


def test_unused_broken_plugins_are_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hub.registry"):
        reg = build_registry(required={"webhook"}, found=PLUGINS)
    assert list(reg) == ["sample-poll", "webhook"]
    assert sorted(reg.broken) == ["broken", "empty-mapper"]
    assert reg.installed == ["broken", "empty-mapper", "sample-poll", "webhook"]
    assert "lxhub-connector-broken" in str(reg.broken["broken"].error)
    logged = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(logged) == 2
    assert any("lxhub-connector-broken" in r.getMessage() for r in logged)


def test_required_broken_or_missing_plugins_refuse_to_start() -> None:
    with pytest.raises(PluginLoadError) as exc:
        build_registry(required={"webhook", "broken", "teams"}, found=PLUGINS)
    message = str(exc.value)
    assert "installed: broken, empty-mapper, sample-poll, webhook;" in message
    assert "expected: broken, teams, webhook;" in message
    assert "missing/broken: broken (" in message
    assert "ModuleNotFoundError" in message
    assert "teams (not installed)" in message


def test_get_registry_is_cached_per_installed_set() -> None:
    assert get_registry() is get_registry()


# -- a real third-party distribution ---------------------------------------------------------------


@pytest.mark.integration
def test_third_party_distribution_is_discovered(tmp_path: Path) -> None:
    """pip-install tests/plugins/lxhub-connector-sample, then find, load and validate it in a
    fresh interpreter that sees it only through its installed metadata."""
    source = tmp_path / "src"
    shutil.copytree(SAMPLE_PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp_path / "site"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    script = textwrap.dedent(
        """
        import json
        from hub.registry import build_registry, find, load, validate
        [plugin] = [f for f in find() if f.name == "sample-coach"]
        loaded = validate(load(plugin))
        registry = build_registry(required={"sample-coach"})
        print(json.dumps({
            "dist": plugin.dist_name, "version": plugin.dist_version, "value": plugin.value,
            "module": loaded.cls.__module__,
            "caps": sorted(c.value for c in loaded.capabilities),
            "in_registry": "sample-coach" in registry,
        }))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(REPO)])}
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "dist": "lxhub-connector-sample",
        "version": "0.1.0",
        "value": "lxhub_connector_sample.connector:SampleCoachConnector",
        "module": "lxhub_connector_sample.connector",
        "caps": ["webhook"],
        "in_registry": True,
    }
    describe = subprocess.run(
        [
            sys.executable,
            "-c",
            "from hub.cli import main; main()",
            "connectors",
            "describe",
            "sample-coach",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert describe.returncode == 0, describe.stderr
    assert "sample-coach: SampleCoachConnector from lxhub-connector-sample 0.1.0" in describe.stdout
    assert "[secret" in describe.stdout

    # The plugin's own tests, the conformance kit among them, pass against the installed plugin,
    # exactly as its author runs them (the kit comes in through lxhub's pytest11 entry point).
    own_tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        cwd=source,
    )
    assert own_tests.returncode == 0, own_tests.stdout[-3000:] + own_tests.stderr[-2000:]
    assert " passed" in own_tests.stdout
    assert "failed" not in own_tests.stdout
