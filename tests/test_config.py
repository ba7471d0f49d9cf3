"""Configuration: every invalid value stops start-up with one sentence naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.config import ConfigError, Settings
from bot.secrets import Secret


def test_defaults_without_any_variable():
    s = Settings.from_env({})
    assert s.port == 3000
    assert s.timezone_name == "UTC"
    assert s.customerio_track_url == "https://track.customer.io"
    assert s.customerio_app_url == "https://api.customer.io"
    assert s.slack_api_url == "https://slack.com/api/"
    assert not s.slack_configured and not s.customerio_configured and not s.launchdarkly_configured


def test_eu_region_and_overrides():
    s = Settings.from_env({"CUSTOMERIO_REGION": "EU"})
    assert s.customerio_track_url == "https://track-eu.customer.io"
    assert s.customerio_app_url == "https://api-eu.customer.io"
    s = Settings.from_env({"CUSTOMERIO_TRACK_URL": "http://127.0.0.1:9/", "SLACK_API_URL": "http://127.0.0.1:8/api"})
    assert s.customerio_track_url == "http://127.0.0.1:9"
    assert s.slack_api_url == "http://127.0.0.1:8/api/", "Slack's base URL needs its trailing slash"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"CUSTOMERIO_REGION": "asia"}, "CUSTOMERIO_REGION"),
        ({"CIO_LAUNCH_CHANNEL": "#launch"}, "CIO_LAUNCH_CHANNEL"),
        ({"CIO_LAUNCH_CHANNEL": "c0123"}, "CIO_LAUNCH_CHANNEL"),
        ({"CIO_OPERATORS": "U0123ABC,@alice"}, "CIO_OPERATORS"),
        ({"CIO_TIMEZONE": "Mars/Olympus"}, "CIO_TIMEZONE"),
        ({"CIO_TIMEZONE": "../etc/passwd"}, "CIO_TIMEZONE"),
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"CIO_CONFIG": "/nonexistent/cio.toml"}, "CIO_CONFIG"),
        ({"SLACK_API_URL": "slack.com/api"}, "SLACK_API_URL"),
        ({"LAUNCHDARKLY_API_URL": "ftp://x"}, "LAUNCHDARKLY_API_URL"),
        ({"CIO_DNS_NAMESERVERS": "127.0.0.1:notaport"}, "CIO_DNS_NAMESERVERS"),
        ({"CIO_SENDING_DOMAIN": "not a domain"}, "CIO_SENDING_DOMAIN"),
    ],
)
def test_invalid_values_name_the_variable(env, variable):
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert message.startswith(variable)
    assert message.count(". ") == 0 or "; " in message or message.endswith(".")
    assert "\n" not in message


def test_unparseable_config_file(tmp_path):
    bad = tmp_path / "cio.toml"
    bad.write_text("[alerts\nbroken = ")
    with pytest.raises(ConfigError, match="CIO_CONFIG file .* is not valid TOML"):
        Settings.from_env({"CIO_CONFIG": str(bad)})


def test_a_misspelt_table_in_the_config_file_is_refused(tmp_path):
    bad = tmp_path / "cio.toml"
    bad.write_text('[alert.thresholds]\nbounce_rate = 0.04\n')
    with pytest.raises(ConfigError, match=r"has unknown table\(s\) alert; known tables are alerts, checks,"):
        Settings.from_env({"CIO_CONFIG": str(bad)})


def test_config_file_sections(tmp_path):
    good = tmp_path / "cio.toml"
    good.write_text('[alerts.thresholds]\nbounce_rate = 0.04\n[documentation]\nrunbook_url = "https://x"\n')
    s = Settings.from_env({"CIO_CONFIG": str(good)})
    assert s.section("alerts")["thresholds"]["bounce_rate"] == 0.04
    assert s.section("missing") == {}


def test_operators_and_nameservers_parse():
    s = Settings.from_env({"CIO_OPERATORS": " U0AAA , S0BBB,W0CCC ",
                           "CIO_DNS_NAMESERVERS": "127.0.0.1:5353, 9.9.9.9, [::1]:53"})
    assert s.operators == ("U0AAA", "S0BBB", "W0CCC")
    assert s.dns_nameservers == (("127.0.0.1", 5353), ("9.9.9.9", 53), ("::1", 53))


def test_secrets_never_render():
    s = Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-very-secret-value-1",
                           "CUSTOMERIO_TRACK_API_KEY": "cio-very-secret-value-2"})
    assert isinstance(s.slack_bot_token, Secret)
    for rendering in (repr(s), str(s), f"{s.slack_bot_token}", repr(s.customerio)):
        assert "very-secret-value" not in rendering
    assert s.slack_bot_token.reveal() == "xoxb-very-secret-value-1"


def test_bad_config_stops_the_cli_with_one_sentence_and_exit_2(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "CIO_TIMEZONE": "Nowhere/Land", "SLACK_BOT_TOKEN": "xoxb-cli-secret-123456",
           "SLACK_SIGNING_SECRET": "signing-cli-secret-654321", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "serve", "--port", "0"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == ["configuration error: CIO_TIMEZONE must be an IANA time zone such as Europe/Berlin or UTC, got 'Nowhere/Land'."]
    assert "cli-secret" not in proc.stdout + proc.stderr
