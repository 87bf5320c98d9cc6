"""SMTP submission with an outcome that tells retry, failure and "maybe delivered" apart."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import getaddresses, parseaddr
from enum import StrEnum

from eakte.settings import Settings


class Outcome(StrEnum):
    """How one submission attempt ended."""

    ACCEPTED = "accepted"
    TRANSIENT = "transient"  # not delivered; try again later
    PERMANENT = "permanent"  # refused for good (5xx)
    UNKNOWN = "unknown"  # the connection broke after the message was handed over


@dataclass(frozen=True)
class SendResult:
    """Outcome of an attempt and the server's words (or the local error)."""

    outcome: Outcome
    detail: str


def _reply(code: int, text: bytes | str) -> SendResult:
    words = text.decode(errors="replace") if isinstance(text, bytes) else text
    detail = f"{code} {words}".strip()
    if 200 <= code < 300:
        return SendResult(Outcome.ACCEPTED, detail)
    return SendResult(Outcome.PERMANENT if code >= 500 else Outcome.TRANSIENT, detail)


def _tls_context(settings: Settings) -> ssl.SSLContext:
    cafile = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    return ssl.create_default_context(cafile=cafile)


def _connect(settings: Settings) -> smtplib.SMTP:
    host, port = settings.smtp_host or "", settings.smtp_port
    timeout = settings.smtp_timeout_seconds
    if settings.smtp_security == "tls":
        return smtplib.SMTP_SSL(host, port, timeout=timeout, context=_tls_context(settings))
    client = smtplib.SMTP(host, port, timeout=timeout)
    try:
        client.ehlo()
        if settings.smtp_security == "starttls":
            client.starttls(context=_tls_context(settings))
            client.ehlo()
    except BaseException:
        client.close()
        raise
    return client


def send(settings: Settings, message: EmailMessage) -> SendResult:
    """Submit one message; never raises for network or protocol errors."""
    if not settings.smtp_host:
        return SendResult(Outcome.TRANSIENT, "no SMTP server is configured (EAKTE_SMTP_HOST)")
    sender = parseaddr(str(message["From"]))[1]
    recipients = [addr for _, addr in getaddresses(message.get_all("To", []))]
    data = message.as_bytes(policy=SMTP_POLICY)
    try:
        client = _connect(settings)
    except (OSError, smtplib.SMTPException) as exc:
        return SendResult(Outcome.TRANSIENT, f"cannot reach the SMTP server: {exc}")
    try:
        try:
            if settings.smtp_username:
                secret = settings.smtp_password
                client.login(settings.smtp_username, secret.get_secret_value() if secret else "")
            code, text = client.mail(sender)
            if code != 250:
                return _reply(code, text)
            for rcpt in recipients:
                code, text = client.rcpt(rcpt)
                if code not in (250, 251):
                    return _reply(code, text)
        except smtplib.SMTPResponseException as exc:
            return _reply(exc.smtp_code, exc.smtp_error)
        except (OSError, smtplib.SMTPException) as exc:
            return SendResult(Outcome.TRANSIENT, f"SMTP session failed: {exc}")
        # From here on a lost connection leaves it open whether the server took the
        # message, so such a failure is never retried automatically (at most once).
        try:
            code, text = client.data(data)
        except smtplib.SMTPResponseException as exc:
            return _reply(exc.smtp_code, exc.smtp_error)
        except (OSError, smtplib.SMTPException) as exc:
            return SendResult(Outcome.UNKNOWN, f"connection lost while sending the message: {exc}")
        return _reply(code, text)
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
