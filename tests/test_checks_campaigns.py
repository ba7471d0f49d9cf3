"""campaigns and deliverability webhooks, against the sandbox App API."""

from __future__ import annotations

from checks.base import Status
from tests import fixtures_checks as fx

kit = fx.kit  # fixture

NO_UNSUBSCRIBE = "<p>Hello</p><p>Example Inc., 1 Main Street, Springfield, CA 94000</p>"
NO_ADDRESS = '<p>Hello</p><a href="{% unsubscribe_url %}">Unsubscribe</a>'


async def test_campaign_checks_pass_on_the_sandbox(kit):
    results = await kit.run(kit.service(), "campaigns")
    for cid in ("campaigns.sender_identity", "campaigns.unsubscribe", "campaigns.postal_address"):
        assert results[cid].status is Status.PASS, results[cid].summary
    assert "hello@example.com" in results["campaigns.sender_identity"].summary


async def test_no_sender_identity_for_the_sending_domain(kit):
    sender = (await kit.run(kit.service({"CIO_SENDING_DOMAIN": "mail.other.org"}), "campaigns"))[
        "campaigns.sender_identity"]
    assert sender.status is Status.FAIL
    assert "mail.other.org" in sender.summary and "example.com" in sender.summary
    assert "Sender Identities" in sender.fix


async def test_no_sending_domain_configured(kit):
    service = kit.service()
    service.settings = service.settings.replace(sending_domain=None)
    sender = (await kit.run(service, "campaigns"))["campaigns.sender_identity"]
    assert sender.status is Status.FAIL and "CIO_SENDING_DOMAIN" in sender.fix


async def test_a_campaign_without_unsubscribe_link_names_campaign_and_action(kit):
    kit.prod.campaign_actions[1][0]["body"] = NO_UNSUBSCRIBE
    results = await kit.run(kit.service(), "campaigns")
    unsub = results["campaigns.unsubscribe"]
    assert unsub.status is Status.FAIL
    assert "campaign “Welcome series” (1), email “Welcome” (11)" in unsub.summary
    assert "December news" not in unsub.summary
    assert "{% unsubscribe_url %}" in unsub.fix
    assert results["campaigns.postal_address"].status is Status.PASS


async def test_a_newsletter_without_unsubscribe_link_and_inactive_campaigns_ignored(kit):
    kit.prod.newsletter_contents[2][0]["body"] = NO_UNSUBSCRIBE
    kit.prod.campaigns.append({"id": 3, "name": "Old draft", "active": False, "state": "draft"})
    kit.prod.campaign_actions[3] = [{"id": 31, "type": "email", "name": "Draft", "body": "nothing"}]
    unsub = (await kit.run(kit.service(), "campaigns"))["campaigns.unsubscribe"]
    assert unsub.status is Status.FAIL
    assert "newsletter “December news” (2)" in unsub.summary and "Old draft" not in unsub.summary


async def test_unsubscribe_in_the_layout_counts(kit):
    action = kit.prod.campaign_actions[1][0]
    action["body"] = "<p>Hi</p><p>1 Main Street, Springfield</p>"
    action["layout"] = "{{content}}<a href='{% manage_subscription_preferences_url %}'>Preferences</a>"
    assert (await kit.run(kit.service(), "campaigns"))["campaigns.unsubscribe"].status is Status.PASS


async def test_the_variable_form_of_unsubscribe_url_is_caught(kit):
    kit.prod.campaign_actions[1][0]["body"] = "<a href='{{ unsubscribe_url }}'>Unsubscribe</a> 1 Main Street"
    unsub = (await kit.run(kit.service(), "campaigns"))["campaigns.unsubscribe"]
    assert unsub.status is Status.FAIL and "renders empty" in unsub.summary


async def test_missing_postal_address_fails(kit):
    kit.prod.campaign_actions[1][0]["body"] = NO_ADDRESS
    address = (await kit.run(kit.service(), "campaigns"))["campaigns.postal_address"]
    assert address.status is Status.FAIL and "Welcome series" in address.summary
    assert "CAN-SPAM" in address.rule


async def test_configured_postal_address_must_appear_exactly(kit):
    toml = fx.config_toml(kit.sandbox.web.url).replace(
        "[checks]\n", '[checks]\npostal_address = "42 Other Road, Shelbyville"\n')
    address = (await kit.run(kit.service(toml=toml), "campaigns"))["campaigns.postal_address"]
    assert address.status is Status.FAIL and "42 Other Road, Shelbyville" in address.summary


# -- deliverability: reporting webhooks -------------------------------------------------------------
async def test_webhook_checks_pass_on_the_sandbox(kit):
    results = await kit.run(kit.service(), "deliverability")
    assert [results[c].status for c in ("deliverability.webhooks", "deliverability.webhook_endpoint",
                                        "deliverability.webhook_events")] == [Status.PASS] * 3


async def test_no_webhooks(kit):
    service = kit.service()
    kit.prod.reporting_webhooks.clear()
    results = await kit.run(service, "deliverability")
    assert results["deliverability.webhooks"].status is Status.FAIL
    assert f"{fx.PUBLIC_URL}/webhooks/customerio" in results["deliverability.webhooks"].fix
    assert results["deliverability.webhook_endpoint"].status is Status.FAIL
    assert results["deliverability.webhook_events"].status is Status.SKIP


async def test_disabled_webhook(kit):
    service = kit.service()
    kit.prod.reporting_webhooks[0]["disabled"] = True
    results = await kit.run(service, "deliverability")
    assert results["deliverability.webhooks"].status is Status.FAIL and "disabled" in results[
        "deliverability.webhooks"].summary
    assert results["deliverability.webhook_endpoint"].status is Status.FAIL


async def test_webhook_pointing_elsewhere(kit):
    service = kit.service()
    kit.prod.reporting_webhooks[0]["endpoint"] = "https://old-bot.example.test/hooks"
    endpoint = (await kit.run(service, "deliverability"))["deliverability.webhook_endpoint"]
    assert endpoint.status is Status.FAIL
    assert "https://old-bot.example.test/hooks" in endpoint.summary
    assert f"{fx.PUBLIC_URL}/webhooks/customerio" in endpoint.fix


async def test_webhook_without_bounces_and_complaints(kit):
    service = kit.service()
    kit.prod.reporting_webhooks[0]["events"] = ["email_sent", "email_delivered"]
    events = (await kit.run(service, "deliverability"))["deliverability.webhook_events"]
    assert events.status is Status.FAIL and "bounces and spam complaints" in events.summary
    assert "email_bounced" in events.fix and "email_spammed" in events.fix


async def test_webhook_without_sent_events_warns(kit):
    service = kit.service()
    kit.prod.reporting_webhooks[0]["events"] = ["email_bounced", "email_spammed"]
    events = (await kit.run(service, "deliverability"))["deliverability.webhook_events"]
    assert events.status is Status.WARN and "email_sent" in events.fix


async def test_no_public_url(kit):
    service = kit.service()
    service.settings = service.settings.replace(public_url=None)
    results = await kit.run(service, "deliverability")
    assert results["deliverability.webhook_endpoint"].status is Status.FAIL
    assert "CIO_PUBLIC_URL" in results["deliverability.webhook_endpoint"].fix
    assert results["deliverability.webhook_events"].status is Status.SKIP
