"""Local fakes of Slack, Customer.io and LaunchDarkly: real aiohttp servers on loopback.

Tests, ``cio-bot console``, ``cio-bot sandbox`` and the rehearsal reach them through the
same base-URL settings as production, so the code under test is the production code.
"""
