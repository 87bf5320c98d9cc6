"""Awkward real-world MIME shapes, built byte by byte so each oddity is exactly what we say."""

from __future__ import annotations

import base64
import quopri
from email.message import EmailMessage
from email.utils import make_msgid

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
HEAD = ("From: Erika Mustermann <Erika.Mustermann@example.org>\r\n"
        "To: post@stadt.example\r\nDate: Mon, 02 Nov 2026 09:15:00 +0100\r\n")


def simple(subject: str, body: str, *, sender: str = "Erika Mustermann <erika@example.org>",
           attachments: list[tuple[str, str, bytes]] | None = None,
           message_id: str | None = None) -> bytes:
    """A well-formed mail with a plain body and attachments (name, MIME type, bytes)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "post@stadt.example"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain="example.org")
    msg.set_content(body)
    for name, mime, data in attachments or []:
        maintype, subtype = mime.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def alternative() -> bytes:
    """multipart/alternative with plain and HTML, and an inline image in multipart/related."""
    return (HEAD + "Subject: Alternative\r\nMessage-ID: <alt@example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=R\r\n\r\n"
            "--R\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n"
            "--A\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße als Text\r\n"
            "--A\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            "<p>Grüße als <b>HTML</b><img src=\"cid:logo\"></p>\r\n--A--\r\n"
            "--R\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\n"
            "Content-Transfer-Encoding: base64\r\nContent-Disposition: inline\r\n\r\n"
            + base64.b64encode(PNG_1PX).decode() + "\r\n--R--\r\n").encode("utf-8")


def html_only() -> bytes:
    """A mail whose only body is HTML (with a remote image that must never be fetched)."""
    return (HEAD + "Subject: Nur HTML\r\nMessage-ID: <html@example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            "<html><body><h1>Antrag</h1><p>Sehr geehrte Damen und Herren,</p>"
            "<img src=\"http://127.0.0.1:9/pixel.gif\"><script>x()</script></body></html>\r\n"
            ).encode("utf-8")


def nested(depth: int = 1) -> bytes:
    """A forward: message/rfc822 inside message/rfc822, `depth` levels, with an attachment."""
    inner = (b"From: Amt <amt@example.net>\r\nSubject: Ebene " + str(depth).encode()
             + b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=N0\r\n\r\n"
             b"--N0\r\nContent-Type: text/plain\r\n\r\nInnerster Text\r\n--N0\r\n"
             b"Content-Type: application/octet-stream\r\n"
             b"Content-Disposition: attachment; filename=\"daten.bin\"\r\n"
             b"Content-Transfer-Encoding: base64\r\n\r\n"
             + base64.b64encode(b"\x00\x01binary") + b"\r\n--N0--\r\n")
    for level in range(depth, 0, -1):
        boundary = f"L{level}".encode()
        inner = (b"From: Weiterleitung <fw@example.org>\r\nSubject: Fwd " + str(level).encode()
                 + b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="
                 + boundary + b"\r\n\r\n--" + boundary + b"\r\nContent-Type: text/plain\r\n\r\n"
                 b"Siehe unten.\r\n--" + boundary + b"\r\nContent-Type: message/rfc822\r\n\r\n"
                 + inner + b"\r\n--" + boundary + b"--\r\n")
    return inner


def encodings() -> bytes:
    """Quoted-printable Latin-1 body and a base64 text attachment with an encoded file name."""
    body = quopri.encodestring("Straße, Größe, Öffnungszeiten".encode("latin-1"))
    return (HEAD.encode() + b"Subject: =?iso-8859-1?q?Stra=DFenausbau?=\r\n"
            b"Message-ID: <enc@example.org>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=E\r\n\r\n"
            b"--E\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + body + b"\r\n"
            b"--E\r\nContent-Type: text/plain; charset=utf-8; name*=UTF-8''Liste%C3%BC.txt\r\n"
            b"Content-Disposition: attachment; filename*=UTF-8''Liste%C3%BC.txt\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.b64encode("Eintrag für Müller".encode()) + b"\r\n--E--\r\n")


def unknown_charset() -> bytes:
    """A body declared in a charset no codec knows."""
    return (HEAD.encode() + b"Subject: Zeichensatz\r\nMessage-ID: <cs@example.org>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-klingon-42\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n")


def missing_boundary() -> bytes:
    """multipart/mixed whose boundary never appears (and one without a boundary parameter)."""
    return (HEAD.encode() + b"Subject: Kaputt\r\nMessage-ID: <mb@example.org>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=NEVER\r\n\r\n"
            b"Text ohne Grenze\r\n--OTHER\r\nContent-Type: text/plain\r\n\r\nx\r\n")


def no_boundary_parameter() -> bytes:
    """multipart/mixed with no boundary at all."""
    return (HEAD.encode() + b"Subject: Ohne Grenze\r\nMessage-ID: <nb@example.org>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nNur Text\r\n")


def empty_attachment() -> bytes:
    """A mail with a 0-byte attachment."""
    return (HEAD.encode() + b"Subject: Leer\r\nMessage-ID: <empty@example.org>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=Z\r\n\r\n"
            b"--Z\r\nContent-Type: text/plain\r\n\r\nAnbei nichts.\r\n"
            b"--Z\r\nContent-Type: application/pdf\r\n"
            b"Content-Disposition: attachment; filename=\"leer.pdf\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n\r\n--Z--\r\n")


def base64_garbage() -> bytes:
    """A base64 attachment whose padding and alphabet are broken."""
    return (HEAD.encode() + b"Subject: Base64\r\nMessage-ID: <b64@example.org>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=G\r\n\r\n"
            b"--G\r\nContent-Type: text/plain\r\n\r\nHallo\r\n"
            b"--G\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; filename=\"x.bin\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nQUJD!!!RE=\r\n--G--\r\n")


def awkward() -> dict[str, bytes]:
    """Every awkward shape by name."""
    return {"alternative": alternative(), "html_only": html_only(), "nested": nested(2),
            "deep": nested(60), "encodings": encodings(), "unknown_charset": unknown_charset(),
            "missing_boundary": missing_boundary(), "no_boundary": no_boundary_parameter(),
            "empty_attachment": empty_attachment(), "base64_garbage": base64_garbage(),
            "deep_multipart": deep_multipart(80)}


def deep_multipart(depth: int) -> bytes:
    """multipart/mixed nested `depth` levels, the text at the bottom."""
    head = (HEAD + "Subject: Tief verschachtelt\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b0\r\n\r\n").encode()
    body = b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
                    for i in range(depth))
    body += b"--b%d\r\nContent-Type: text/plain\r\n\r\nGanz unten\r\n--b%d--\r\n" % (depth, depth)
    body += b"".join(b"--b%d--\r\n" % i for i in range(depth - 1, -1, -1))
    return head + body
