"""hacore-notify: run a script, POST JSON to a webhook or send mail at every cluster event,
found by hacore through the ``hacore.plugins`` entry point ``notify``."""

from __future__ import annotations

from hacore_notify.message import Notice
from hacore_notify.notifiers import (
    ExecNotifier,
    MailNotifier,
    Notifier,
    NotifierError,
    WebhookNotifier,
)
from hacore_notify.plugin import NotifyPlugin
from hacore_notify.settings import EventKind, load_settings

__version__ = "0.1.0"

__all__ = [
    "EventKind",
    "ExecNotifier",
    "MailNotifier",
    "Notice",
    "Notifier",
    "NotifierError",
    "NotifyPlugin",
    "WebhookNotifier",
    "__version__",
    "load_settings",
]
