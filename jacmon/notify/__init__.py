"""Notifications: alert changes delivered to webhooks, Slack, email and Alertmanager.

The alert change log is the outbox (see docs/notifications.md): a router expands
changes into per-receiver notification rows, grouped as Alertmanager groups them,
and a delivery worker per receiver sends them with retries until accepted.
"""
