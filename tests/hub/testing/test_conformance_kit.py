"""The conformance kit must pass a good connector and fail a deliberately broken one.

Each test builds a throw-away project with `pytester`: the toy connector module(s), a fixture
tree, a fake installed distribution declaring `lxhub.connectors` entry points, and a generated
test file that subclasses the kit's classes exactly as a plugin author would.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# Imported here, before any pytester run: pytester restores sys.modules after each in-process
# run, and modules first imported inside a run would otherwise be re-imported by the next one
# while other modules still hold the old classes (two different `hub.Connector`s).
import hub.testing.fixtures
import hub.testing.suite  # noqa: F401

pytest_plugins = ["pytester"]

HERE = Path(__file__).parent

GOOD = """
from pathlib import Path

from hub.testing import PollingConformance, WebhookConformance
from toy_connector import SAMPLE_SETTINGS, ToyConnector, ToyHooks


class TestToy(ToyHooks, PollingConformance, WebhookConformance):
    connector = ToyConnector
    entry_point = "toy"
    sample_settings = SAMPLE_SETTINGS
    fixtures = Path(__file__).parent / "fixtures"
    people = {"u-2": "grace@example.com"}
    expected_handshake_body = b"challenge-123"
    {extra}
"""

BROKEN = """
from pathlib import Path

from hub.testing import PollingConformance, WebhookConformance
from broken_connector import BrokenConnector
from toy_connector import SAMPLE_SETTINGS, ToyHooks


class TestBroken(ToyHooks, PollingConformance, WebhookConformance):
    connector = BrokenConnector
    entry_point = "broken"
    sample_settings = SAMPLE_SETTINGS
    fixtures = Path(__file__).parent / "fixtures"
    people = {"u-2": "grace@example.com"}
    expected_handshake_body = b"challenge-123"
"""

ENTRY_POINTS = """\
[lxhub.connectors]
toy = toy_connector:ToyConnector
broken = toy_connector:ToyConnector
"""


def make_project(pytester: pytest.Pytester, test_source: str) -> Path:
    """Lay out a plugin project in the pytester directory and return its fixtures dir."""
    pytester.makepyfile(
        toy_connector=(HERE / "toy_connector.py").read_text(encoding="utf-8"),
        broken_connector=(HERE / "broken_connector.py").read_text(encoding="utf-8"),
    )
    fixtures = pytester.path / "fixtures"
    shutil.copytree(HERE / "toy_fixtures", fixtures)
    dist = pytester.mkdir("toy_plugin-0.1.dist-info")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    pytester.syspathinsert()
    pytester.makepyfile(test_plugin=test_source)
    return fixtures


def run(pytester: pytest.Pytester) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "-rfEs", "-q")


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """test id -> PASSED/FAILED/SKIPPED/ERROR from `-rA`-style summary lines."""
    out: dict[str, str] = {}
    for line in result.outlines:
        for word in ("PASSED", "FAILED", "ERROR", "SKIPPED"):
            if line.startswith(word + " "):
                out[line.split(" ")[1].split("::")[-1]] = word
    return out


def test_good_connector_passes_everything(pytester: pytest.Pytester) -> None:
    make_project(pytester, GOOD.replace("{extra}", ""))
    result = run(pytester)
    result.assert_outcomes(passed=38)


BROKEN_FAILURES = {
    "test_entry_point_resolves_to_connector": "loads <class 'toy_connector.ToyConnector'>",
    "test_name_matches_entry_point": "name is 'Broken_Toy' but the entry point is 'broken'",
    "test_registry_accepts_connector": "must forbid unknown keys",
    "test_settings_forbid_unknown_keys": "BrokenSettings (extra='allow')",
    "test_secret_fields_are_secretstr": "api_token",
    "test_settings_fields_have_descriptions": "signing_secret",
    "test_sample_settings_validate": "DID NOT RAISE",
    "test_status_details_are_text_without_calls_or_secrets": "status_details() raised "
    "AllMockedAssertionError",
    "test_check_unauthorized_is_config_error": "TransientError",
    "test_mapping_matches_golden[completed]": "completed.actual.json",
    "test_mapping_matches_golden[registered]": "registered.actual.json",
    "test_every_event_type_has_a_fixture": "['lesson.failed']",
    "test_mapping_is_deterministic": "gave different statements",
    "test_actors_follow_ifi_strategy[mbox_sha1sum]": "carries raw email 'ada@example.com'",
    "test_actors_follow_ifi_strategy[account]": "carries raw email 'ada@example.com'",
    "test_end_to_end_redelivery_is_already_stored": "different",
    "test_cursor_monotonic_and_not_beyond_until": "is beyond until=2025-07-01T11:55:00+00:00",
    "test_repeated_token_raises_pagination_loop": "pagination does not terminate",
    "test_rate_limited_with_retry_after[http-date]": "ValueError",
    "test_tampered_body_is_rejected": "a tampered body: verify() accepted the request",
    "test_stale_timestamp_is_rejected": "verify() accepted the request",
    "test_missing_header_is_invalid": "verify() raised KeyError",
    "test_malformed_header_is_invalid": "verify() raised ValueError",
    "test_handshake_echoes_challenge": "expected b'challenge-123'",
}


def test_broken_connector_is_reported(pytester: pytest.Pytester) -> None:
    fixtures = make_project(pytester, BROKEN)
    result = run(pytester)
    failed = {name for name, word in outcomes(result).items() if word == "FAILED"}
    assert failed == set(BROKEN_FAILURES), result.stdout.str()
    text = result.stdout.str()
    for name, message in BROKEN_FAILURES.items():
        assert message in text, f"{name}: expected {message!r} in the report"
    # golden mismatches leave the actual output next to the expected file, for diffing
    assert (fixtures / "expected" / "completed.actual.json").is_file()
    assert (fixtures / "expected" / "registered.actual.json").is_file()
    assert not (fixtures / "expected" / "user_updated.actual.json").exists()


def test_opt_out_skips_with_its_reason(pytester: pytest.Pytester) -> None:
    extra = 'skip = {"webhook.handshake": "toy has none", "check": "no remote check"}'
    make_project(pytester, GOOD.replace("{extra}", extra))
    result = run(pytester)
    result.assert_outcomes(passed=33, skipped=5)
    result.stdout.fnmatch_lines(
        ["*opted out of check.*no remote check*", "*opted out of webhook.handshake: toy has none*"]
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('skip = {"webhook.handshak": "typo"}', "unknown opt-out key 'webhook.handshak'"),
        ('skip = {"webhook.handshake": " "}', "opt-out 'webhook.handshake' needs a reason"),
    ],
)
def test_bad_opt_outs_are_errors(pytester: pytest.Pytester, extra: str, message: str) -> None:
    make_project(pytester, GOOD.replace("{extra}", extra))
    result = run(pytester)
    result.assert_outcomes(errors=1)
    assert message in result.stdout.str()


def test_missing_golden_file_fails_and_writes_actual(pytester: pytest.Pytester) -> None:
    fixtures = make_project(pytester, GOOD.replace("{extra}", ""))
    (fixtures / "expected" / "registered.json").unlink()
    result = run(pytester)
    result.assert_outcomes(passed=37, failed=1)
    result.stdout.fnmatch_lines(["*missing expected file*registered.json*"])
    assert (fixtures / "expected" / "registered.actual.json").is_file()


def test_missing_hooks_say_what_to_implement(pytester: pytest.Pytester) -> None:
    source = """
from pathlib import Path

from hub.testing import PollingConformance
from toy_connector import SAMPLE_SETTINGS, ToyConnector


class TestBare(PollingConformance):
    connector = ToyConnector
    entry_point = "toy"
    sample_settings = SAMPLE_SETTINGS
    fixtures = Path(__file__).parent / "fixtures"
"""
    make_project(pytester, source)
    result = run(pytester)
    result.stdout.fnmatch_lines(
        [
            "*TestBare must implement mock_check_success(router)*skip = {'check': '<reason>'}*",
            "*TestBare must implement poll_routes(router)*",
            "*TestBare must implement rate_limit_route(router, retry_after)*",
        ]
    )


CHATTY = """
class Chatty(ToyConnector):
    def parse(self, request):
        self.runtime.http.get("https://api.toy.example/v1/users/u-1")  # I/O in parse()
        return super().parse(request)


class TestToy("""


def test_parse_with_http_call_is_reported(pytester: pytest.Pytester) -> None:
    source = GOOD.replace("{extra}", "check_entry_point = False")
    source = source.replace("class TestToy(", CHATTY).replace(
        "connector = ToyConnector",
        "connector = Chatty\n    skip = {'plugin': 'a subclass made for this test'}",
    )
    make_project(pytester, source)
    result = run(pytester)
    assert outcomes(result)["test_parse_makes_no_http_call"] == "FAILED"
    result.stdout.fnmatch_lines(["*GET*https://api.toy.example/v1/users/u-1*not mocked*"])
