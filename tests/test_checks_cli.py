"""cio-bot check: exit 0 = go, 1 = no-go, 2 = configuration error; text and JSON."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from bot.cli import main
from bot.store import Store
from tests import fixtures_checks as fx

ROOT = Path(__file__).resolve().parents[1]


async def _cli(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    full = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "check", *args, env=full, cwd=str(cwd),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_go_exits_0_and_json_lists_every_result(tmp_path, sandbox):
    env = sandbox.overlay(fx.ready_env(tmp_path, sandbox))
    store = Store(env["CIO_DB_PATH"])
    fx.confirm_all_signoffs(store)
    store.close()
    code, out, err = await _cli(["--format", "json"], env, tmp_path)
    assert code == 0, out + err
    report = json.loads(out)
    assert report["verdict"] == "go" and report["environment"] == "production"
    assert len(report["results"]) == report["planned"]
    for r in report["results"]:
        assert {"id", "category", "status", "summary", "detail", "fix", "duration_ms"} <= set(r)
    assert {r["category"] for r in report["results"]} >= {"credentials", "integration", "campaigns",
                                                          "deliverability", "monitoring", "testing",
                                                          "documentation", "rollback"}
    assert sandbox.customerio_prod.track_key not in out + err
    runs = Store(env["CIO_DB_PATH"])
    try:
        assert runs.checks.last_run()["source"] == "cli"
    finally:
        runs.close()


async def test_no_go_exits_1_with_the_fix_in_text(tmp_path, sandbox):
    sandbox.customerio_prod.region = "eu"
    env = sandbox.overlay(fx.ready_env(tmp_path, sandbox))
    code, out, _ = await _cli(["credentials"], env, tmp_path)
    assert code == 1
    assert out.startswith("Readiness NO-GO: production")
    assert "FAIL   credentials.region" in out and "fix: Set CUSTOMERIO_REGION=eu" in out


async def test_configuration_errors_exit_2(tmp_path, sandbox):
    env = sandbox.overlay(fx.ready_env(tmp_path, sandbox))
    code, _, err = await _cli(["credentails"], env, tmp_path)
    assert code == 2 and "'credentails' is not a check category" in err and "rollback" in err
    code, _, err = await _cli([], {**env, "CUSTOMERIO_REGION": "mars"}, tmp_path)
    assert code == 2 and "CUSTOMERIO_REGION must be 'us' or 'eu'" in err
    (tmp_path / "bad.toml").write_text('[checks]\ntimeout_seconds = "fast"\n')
    code, _, err = await _cli([], {**env, "CIO_CONFIG": str(tmp_path / "bad.toml")}, tmp_path)
    assert code == 2 and "[checks] timeout_seconds in CIO_CONFIG must be a number" in err
    (tmp_path / "typo.toml").write_text('[rollback]\nbackup_mesaging = "old ESP"\n')
    code, _, err = await _cli([], {**env, "CIO_CONFIG": str(tmp_path / "typo.toml")}, tmp_path)
    assert code == 2 and "[rollback] in CIO_CONFIG has unknown key(s) backup_mesaging; known keys are" in err
    code, _, err = await _cli(["--env", "qa"], env, tmp_path)
    assert code == 2 and "invalid choice" in err


def test_without_credentials_it_runs_on_the_sandbox(tmp_path, monkeypatch, capsys):
    for key in list(os.environ):
        if key.startswith(("CUSTOMERIO_", "SLACK_", "CIO_", "LAUNCHDARKLY_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    code = main(["check", "credentials", "testing", "--format", "json"])
    captured = capsys.readouterr()
    assert "running against the built-in sandbox" in captured.err
    report = json.loads(captured.out)
    statuses = {r["id"]: r["status"] for r in report["results"]}
    assert statuses["credentials.region"] == "pass" and statuses["testing.smoke_test"] == "pass"
    assert code == 1  # the sign-offs are pending on a fresh sandbox
    assert not (tmp_path / "cio-launchbot.db").exists()  # a throwaway database
