"""Letter rendering: a Jinja2 body template inside the DIN 5008 frame, printed by WeasyPrint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any, NoReturn

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from eakte.errors import InvalidInput

# Administrators write the templates, but a sandbox still keeps a template from reaching
# Python internals; StrictUndefined turns a misspelt placeholder into an error, not a gap.
_SANDBOX = SandboxedEnvironment(autoescape=True, undefined=jinja2.StrictUndefined)
_FRAME = jinja2.Environment(
    loader=jinja2.FunctionLoader(
        lambda name: resources.files("eakte.outgoing").joinpath("templates", name).read_text()
    ),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class LetterContext:
    """What a letter template can use."""

    reference: str
    file_title: str
    subject: str
    date: datetime
    recipient_name: str
    recipient_address: str
    recipient_email: str | None
    sender_name: str
    sender_address: str
    clerk: str
    fields: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        """The template variables."""
        return {
            "file": {"reference": self.reference, "title": self.file_title},
            "subject": self.subject,
            "date": self.date.strftime("%d.%m.%Y"),
            "recipient": {
                "name": self.recipient_name,
                "address": self.recipient_address,
                "email": self.recipient_email or "",
            },
            "sender": {
                "name": self.sender_name,
                "address": self.sender_address,
                "clerk": self.clerk,
            },
            "fields": dict(self.fields),
        }


def _template_error(name: str, exc: Exception) -> NoReturn:
    line = getattr(exc, "lineno", None)
    where = f" (line {line})" if line else ""
    raise InvalidInput(f"template {name!r} does not render{where}: {exc}") from None


def check_template(name: str, body_html: str) -> None:
    """Raise InvalidInput if the template body is not valid Jinja2."""
    try:
        _SANDBOX.parse(body_html)
    except jinja2.TemplateSyntaxError as exc:
        _template_error(name, exc)


def render_html(name: str, body_html: str, context: LetterContext) -> str:
    """The complete letter as HTML; InvalidInput if the template fails with this context."""
    values = context.as_dict()
    try:
        body = _SANDBOX.from_string(body_html).render(values)
    except (jinja2.TemplateError, TypeError, ValueError, AttributeError, KeyError,
            ArithmeticError) as exc:  # fmt: skip
        _template_error(name, exc)
    # The body was rendered with autoescaping, so inserting it unescaped is safe.
    return _FRAME.get_template("letter.html").render(values | {"body": Markup(body)})  # noqa: S704


def html_to_pdf(html: str) -> bytes:
    """Print HTML to PDF with WeasyPrint (about 0.15 s for an A4 letter).

    A letter is self-contained: no protocol is allowed, so a template can never make the
    server fetch URLs or read files, and one that tries fails with a clear error.
    """
    import weasyprint  # type: ignore[import-untyped]
    from weasyprint.urls import FatalURLFetchingError, URLFetcher  # type: ignore[import-untyped]

    refuse_all = URLFetcher(allowed_protocols=(), fail_on_errors=True, timeout=1)
    try:
        pdf: bytes = weasyprint.HTML(string=html, url_fetcher=refuse_all).write_pdf()
    except FatalURLFetchingError as exc:
        raise InvalidInput(f"letters may not load external resources: {exc}") from None
    return pdf
