"""Notifications: residents follow lines, stops and the agenda and are told, by Web Push,
when something changes there (see docs/NOTIFICATIONS.md)."""
