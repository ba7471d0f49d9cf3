"""The files a newcomer deploys with: manifest.yml, Procfile, README, the console script."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

from bot.config import VARIABLES
from handlers.registry import commands, load_handlers

ROOT = Path(__file__).resolve().parent.parent


def test_manifest_is_valid_against_slacks_schema_and_declares_what_the_bot_uses():
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    schema = json.loads((ROOT / "tests/data/slack-manifest.schema.1.0.0.json").read_text())
    jsonschema.validate(manifest, schema)
    commands_declared = {c["command"]: c for c in manifest["features"]["slash_commands"]}
    assert commands_declared["/cio"]["url"].endswith("/slack/events")
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "usergroups:read", "channels:read", "files:write"} <= scopes
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["interactivity"]["request_url"].endswith("/slack/events")
    assert "socket_mode_enabled" in manifest["settings"]


def test_procfile_serves_on_port():
    line = (ROOT / "Procfile").read_text().strip()
    assert line.startswith("web: ") and "cio-bot serve" in line and "$PORT" in line.replace("{", "").replace(":-3000}", "")


def test_readme_documents_every_variable_and_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    missing = [name for name in VARIABLES if f"`{name}`" not in readme]
    assert not missing, f"README does not document {missing}"
    for name in re.findall(r"`((?:CIO|SLACK|CUSTOMERIO|LAUNCHDARKLY)_[A-Z_]+)`", readme):
        assert name in VARIABLES or name == "CIO_LOG_LEVEL", f"README documents unknown variable {name}"


def test_readme_lists_every_registered_command():
    load_handlers()
    readme = (ROOT / "README.md").read_text()
    for cmd in commands():
        assert f"/cio {cmd.name}" in readme, cmd.name


def test_console_script_answers_help():
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for sub in ("serve", "console", "sandbox", "run"):
        assert sub in proc.stdout


def test_make_run_main_job_plays_a_session_and_exits_0(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "run"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "> /cio help" in out and "For launch operators" in out
    assert "is not a /cio command" in out
    assert "Only launch operators can run" in out
    assert not list(tmp_path.glob("*.db")), "the demo must not leave a database behind"


def test_console_reads_lines_from_stdin(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "console"], input="/cio help\nhello\n/cio status\nquit\n",
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "CIO_DB_PATH": str(tmp_path / "console.db")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "== cio-launchbot ==" in proc.stdout
    assert "Type /cio <command>" in proc.stdout
    assert "Launch status" in proc.stdout
    assert (tmp_path / "console.db").exists(), "the console keeps its state in CIO_DB_PATH"
