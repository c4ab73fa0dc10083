"""Secrets never reach a log line, whoever writes it (httpx logs every request's full URL at `info`, and a
Slack incoming-webhook URL is itself the secret).

`install()` wraps the logging module's record factory, so each record's message is redacted when it is made,
before any handler or formatter sees it: what looks like a secret by its shape (a Slack webhook path, a
bearer token, a provider or TokenLedger key, a password in a URL, a secret-named query parameter), and every
value registered with `register()` (alert channels' URL paths, as the deliverer uses them).
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import urlsplit

MASK = "…"
_SHAPES = (
    # Slack incoming webhooks: /services/T…/B…/<secret> (https://api.slack.com/messaging/webhooks)
    (re.compile(r"(/services/T[A-Z0-9]+/B[A-Z0-9]+/)[A-Za-z0-9]+"), rf"\g<1>{MASK}"),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+"), rf"\g<1>{MASK}"),
    (
        re.compile(
            r"(?i)([?&](?:api[_-]?key|key|token|access_token|secret|signature|sig|code|password|routing_key)=)"
            r"[^&#\s\"']+"
        ),
        rf"\g<1>{MASK}",
    ),
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), rf"\g<1>{MASK}@"),
    (re.compile(r"\b(sk-[A-Za-z0-9]*-?)[A-Za-z0-9_-]{16,}"), rf"\g<1>{MASK}"),
    (re.compile(r"\b(tl_[A-Za-z0-9]+\.)[A-Za-z0-9_-]+"), rf"\g<1>{MASK}"),
)
_MIN_REGISTERED = 8
_registered: set[str] = set()
_registered_lock = threading.Lock()
_installed = False


def register(secret: str) -> None:
    """Redact this value wherever it appears from now on (values shorter than 8 characters are ignored: they
    would blank out ordinary words)."""
    if len(secret) >= _MIN_REGISTERED and secret not in _registered:
        with _registered_lock:
            _registered.add(secret)


def register_url(url: str, *, whole_path: bool) -> None:
    """Register the secret parts of a URL: its query, and its path when the whole path is a secret (a Slack
    webhook) or else each path segment long enough to be a token (as Discord and Teams webhooks carry)."""
    parts = urlsplit(url)
    if parts.query:
        register(parts.query)
    if whole_path and parts.path.strip("/"):
        register(parts.path.rstrip("/"))
    else:
        for segment in parts.path.split("/"):
            if len(segment) >= 16:
                register(segment)


def redact(text: str) -> str:
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    for secret in sorted(_registered, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def install() -> None:
    """Redact every log record of this process from now on (once; later calls do nothing)."""
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def redacted_record(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: logging reports it itself when it formats the record
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    logging.setLogRecordFactory(redacted_record)
