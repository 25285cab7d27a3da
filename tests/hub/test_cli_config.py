"""The CLI: `config check` and `connectors list|describe|schema`, through click's CliRunner."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner, Result

from hub.cli import CliState, main
from hub.errors import PluginLoadError
from hub.registry import BrokenPlugin, FoundPlugin, Registry

REPO = Path(__file__).resolve().parents[2]


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

SECRET_VALUES = ("pw-123-secret", "acme-456-secret", "literal-token-789")


def registry() -> Registry:
    broken = FoundPlugin("teams", "lxhub_teams:Teams", "lxhub-connector-teams", "0.3.0")
    return Registry(
        Registry.from_classes([sc.StandInWebhookConnector, sc.SamplePollConnector]).values(),
        broken=[
            BrokenPlugin(
                broken,
                PluginLoadError(broken.display_name, "cannot import: ModuleNotFoundError: msal"),
            )
        ],
    )


def run(args: list[str], *, env: dict[str, str] | None = None) -> Result:
    runner = CliRunner()
    return runner.invoke(
        main, args, obj=CliState(registry_factory=registry), env=env or {}, catch_exceptions=False
    )


def write(root: Path, files: dict[str, str]) -> Path:
    conf = root / "config"
    (conf / "connectors").mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (conf / rel).write_text(textwrap.dedent(text))
    return conf


HUB = """\
lrs:
  - name: main
    endpoint: https://lrs.example.test/xapi/
    username: hub
    password: ${LRS_PASSWORD}
web:
  admin_token: literal-token-789
"""


def test_shipped_example_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LXHUB_CONFIG", raising=False)
    result = run(["--config", str(REPO / "config"), "config", "check"])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.endswith(
        "OK: 1 LRS destination (1 enabled), 1 connector instance (1 enabled), 1 warning"
    )
    # the one warning is the installed-but-broken plugin nobody uses
    assert "plugin teams (lxhub-connector-teams 0.3.0): warning:" in result.output
    assert "dev-secret-change-me" not in result.output


def test_config_dir_from_environment(tmp_path: Path) -> None:
    conf = write(tmp_path, {"hub.yaml": "lrs: [{name: local, type: local}]\n"})
    result = run(["config", "check"], env={"LXHUB_CONFIG": str(conf)})
    assert result.exit_code == 0, result.output
    assert f"{conf}: OK" in result.output


def test_all_three_problems_with_file_and_key_path(tmp_path: Path) -> None:
    conf = write(
        tmp_path,
        {
            "hub.yaml": HUB.replace(
                "    username: hub\n", "    username: hub\n    batch_sise: 5\n"
            ),
            "connectors/acme.yaml": """\
                id: acme
                type: webhook
                enabled: true
                settings:
                  preset: example-coaching
                  tenant: acme
                  secrets:
                    current: ${ACME_SECRET}
                """,
            "connectors/chat.yaml": """\
                id: chat
                type: slak
                enabled: true
                settings: {}
                """,
        },
    )
    result = run(["--config", str(conf), "config", "check"], env={"LRS_PASSWORD": "pw-123-secret"})
    assert result.exit_code == 1
    lines = result.output.splitlines()
    hub_file = str(conf / "hub.yaml")
    acme_file = str(conf / "connectors" / "acme.yaml")
    chat_file = str(conf / "connectors" / "chat.yaml")
    assert (
        f"{hub_file}: lrs[0].batch_sise: unknown key 'batch_sise'; did you mean 'batch_size'?"
        in lines
    )
    assert (
        f"{acme_file}: settings.secrets.current: environment variable ACME_SECRET is not set "
        "(set it, or write ${ACME_SECRET:-default})"
    ) in lines
    assert (
        f"{chat_file}: type: unknown connector type 'slak' (installed types: sample-poll, webhook)"
    ) in lines
    assert f"{hub_file}: web.admin_token: warning: secret written as a literal" in result.output
    assert lines[-1] == (
        f"{conf}: 3 errors, 2 warnings; fix the errors above, then run `lxhub config check` again"
    )
    assert "Traceback" not in result.output
    for secret in SECRET_VALUES:
        assert secret not in result.output


def test_missing_config_directory_is_one_clear_line(tmp_path: Path) -> None:
    result = run(["--config", str(tmp_path / "nowhere"), "config", "check"])
    assert result.exit_code == 1
    assert "config directory does not exist (use --config DIR or set LXHUB_CONFIG)" in result.output


def test_unexpected_errors_are_one_sentence_not_a_traceback() -> None:
    def exploding() -> Registry:
        raise RuntimeError("disk on fire")

    result = CliRunner().invoke(
        main, ["connectors", "list"], obj=CliState(registry_factory=exploding)
    )
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: unexpected RuntimeError: disk on fire (this is a bug; run again with "
        "LXHUB_DEBUG=1 for the traceback and report it)"
    )


def test_connectors_list_shows_broken_plugins() -> None:
    result = run(["connectors", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "CAPABILITIES", "DISTRIBUTION", "VERSION"]
    assert lines[1].split() == ["sample-poll", "polling", "<local>", "0"]
    assert lines[2].split() == ["webhook", "webhook", "<local>", "0"]
    assert lines[3].split() == ["teams", "BROKEN", "lxhub-connector-teams", "0.3.0"]
    assert "teams: cannot import: ModuleNotFoundError: msal" in result.output


def test_connectors_describe_flags_secrets() -> None:
    result = run(["connectors", "describe", "sample-poll"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("sample-poll: SamplePollConnector from <local> 0")
    assert "capabilities: polling" in out
    assert "Polls a sample API, one page per call." in out
    assert "settings (PollSettings):" in out
    api_key = next(line for line in out.splitlines() if line.strip().startswith("api_key"))
    assert "SecretStr" in api_key
    assert "required" in api_key
    assert "[secret" in api_key
    base_url = next(line for line in out.splitlines() if line.strip().startswith("base_url"))
    assert "HttpUrl" in base_url
    assert "[secret" not in base_url
    assert "API base URL" in out


def test_connectors_describe_unknown_and_broken() -> None:
    result = run(["connectors", "describe", "webhok"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: no connector plugin named 'webhok'; did you mean 'webhook'? "
        "(installed: sample-poll, webhook; see `lxhub connectors list`)"
    )
    result = run(["connectors", "describe", "teams"])
    assert result.exit_code == 1
    assert "lxhub-connector-teams 0.3.0" in result.output
    assert "msal" in result.output


def test_connectors_schema(tmp_path: Path) -> None:
    result = run(["connectors", "schema", "webhook"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["preset", "tenant"]
    assert schema["properties"]["secrets"]["additionalProperties"]["writeOnly"] is True
    out = tmp_path / "schema" / "webhook.json"
    result = run(["connectors", "schema", "webhook", "--out", str(out)])
    assert result.exit_code == 0
    assert json.loads(out.read_text()) == schema
    assert f"wrote {out}" in result.output


def test_commands_from_the_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lxhub_test_cmd_plugin.py").write_text(
        textwrap.dedent(
            """
            import click

            @click.command("hello")
            @click.pass_obj
            def hello(state):
                click.echo(f"hello from {state.config_dir}")

            @click.command("config")  # a built-in name: never overridden
            def config():
                click.echo("hijacked")

            COMMANDS = (hello, config)
            """
        )
    )
    info = tmp_path / "lxhub_test_cmd_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: lxhub-test-cmd-plugin\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[lxhub.commands]\ncmds = lxhub_test_cmd_plugin:COMMANDS\nbad = lxhub_no_such_mod:X\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    result = run(["--config", "/srv/conf", "hello"])
    assert result.exit_code == 0, result.output
    assert "hello from /srv/conf" in result.output
    assert "warning: lxhub command plugin bad = lxhub_no_such_mod:X failed to load" in result.output
    result = run(["--help"])
    assert "hello" in result.output
    assert "config" in result.output
    result = run(["config", "--help"])
    assert "hijacked" not in result.output
    assert "check" in result.output
