"""credentials: over real HTTP against the sandbox Customer.io."""

from __future__ import annotations

from checks.base import Severity, Status
from tests import fixtures_checks as fx

kit = fx.kit  # fixture


async def test_all_credentials_checks_pass_on_the_sandbox(kit):
    results = await kit.run(kit.service(), "credentials")
    assert {r: v.status for r, v in results.items()} == {
        "credentials.present": Status.PASS, "credentials.distinct": Status.PASS,
        "credentials.region": Status.PASS, "credentials.workspace": Status.PASS,
        "credentials.app_key": Status.PASS, "credentials.source": Status.PASS}


async def test_missing_variables_are_named(kit):
    results = await kit.run(kit.service({"CUSTOMERIO_APP_API_KEY": "", "CUSTOMERIO_SITE_ID": "x",
                                         "CUSTOMERIO_TRACK_API_KEY": ""}), "credentials")
    present = results["credentials.present"]
    assert present.status is Status.FAIL
    assert "CUSTOMERIO_TRACK_API_KEY" in present.summary and "CUSTOMERIO_APP_API_KEY" in present.summary
    assert "secrets manager" in present.fix
    assert results["credentials.region"].status is Status.SKIP
    assert results["credentials.app_key"].status is Status.SKIP


async def test_wrong_region_names_the_right_base_url(kit):
    kit.prod.region = "eu"
    region = (await kit.run(kit.service(), "credentials"))["credentials.region"]
    assert region.status is Status.FAIL
    assert "EU region" in region.summary and "CUSTOMERIO_REGION is US" in region.summary
    assert "CUSTOMERIO_REGION=eu" in region.fix
    assert "https://track-eu.customer.io" in region.fix and "https://api-eu.customer.io" in region.fix


async def test_eu_account_with_eu_setting_passes(kit):
    kit.prod.region = "eu"
    region = (await kit.run(kit.service({"CUSTOMERIO_REGION": "eu"}), "credentials"))["credentials.region"]
    assert region.status is Status.PASS and "track-eu" in region.summary


async def test_rejected_track_keys_fail_without_leaking_them(kit):
    results = await kit.run(kit.service({"CUSTOMERIO_TRACK_API_KEY": "wrong-track-key-123"}), "credentials")
    region = results["credentials.region"]
    assert region.status is Status.FAIL and "rejected" in region.summary and "401" in region.summary
    assert "wrong-track-key-123" not in (region.summary + region.detail + region.fix)
    assert results["credentials.workspace"].status is Status.SKIP


async def test_rejected_app_key_fails(kit):
    app = (await kit.run(kit.service({"CUSTOMERIO_APP_API_KEY": "bad-app-key-456"}), "credentials"))[
        "credentials.app_key"]
    assert app.status is Status.FAIL and "App API key" in app.summary
    assert "CUSTOMERIO_APP_API_KEY" in app.fix


async def test_production_keys_equal_to_staging_fail(kit):
    same = {"CUSTOMERIO_STAGING_SITE_ID": kit.prod.site_id,
            "CUSTOMERIO_STAGING_TRACK_API_KEY": kit.prod.track_key,
            "CUSTOMERIO_STAGING_APP_API_KEY": kit.prod.app_key}
    results = await kit.run(kit.service(same), "credentials")
    distinct = results["credentials.distinct"]
    assert distinct.status is Status.FAIL
    assert "Site ID, Track API key, App API key are the same as staging's" in distinct.summary
    assert kit.prod.track_key not in distinct.summary
    assert results["credentials.workspace"].status is Status.FAIL  # same workspace, too


async def test_same_workspace_with_different_keys_fails(kit):
    kit.staging.environment_id = kit.prod.environment_id
    workspace = (await kit.run(kit.service(), "credentials"))["credentials.workspace"]
    assert workspace.status is Status.FAIL and "same workspace" in workspace.summary
    assert "separate production workspace" in workspace.fix


async def test_no_staging_credentials_skips_the_comparisons(kit):
    service = kit.service()  # (the sandbox overlay fills empty variables, so unset them here)
    service.settings = service.settings.replace(
        customerio_staging=type(service.settings.customerio_staging)(None, None, None))
    results = await kit.run(service, "credentials")
    assert results["credentials.distinct"].status is Status.SKIP
    assert results["credentials.workspace"].status is Status.SKIP


async def test_keys_in_a_dotenv_file_warn(kit, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / ".env").write_text("# local\nexport CUSTOMERIO_TRACK_API_KEY=abc123\nOTHER=1\n"
                               "CUSTOMERIO_APP_API_KEY='xyz'\n")
    monkeypatch.chdir(work)
    source = (await kit.run(kit.service(), "credentials"))["credentials.source"]
    assert source.status is Status.WARN and source.severity is Severity.ADVISORY
    assert "CUSTOMERIO_TRACK_API_KEY, CUSTOMERIO_APP_API_KEY" in source.summary
    assert "abc123" not in source.summary and "secrets manager" in source.fix


async def test_staging_environment_run_checks_staging_credentials(kit):
    results = await kit.run(kit.service(), "credentials", environment="staging")
    assert results["credentials.region"].status is Status.PASS
    assert "staging" in results["credentials.present"].summary
    assert results["credentials.workspace"].summary.startswith("Workspace 202")
