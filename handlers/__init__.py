"""Slack listeners (commands, buttons), HTTP endpoints and the console.

Handlers parse input, check permission, call a service and render the answer; they hold
no business logic and no SQL.
"""
