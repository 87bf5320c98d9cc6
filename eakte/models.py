"""Imports every table, so Alembic and the tests see the whole schema."""

from eakte.audit.models import AuditEvent, AuditHead
from eakte.auth.models import ApiKey
from eakte.contacts.models import Contact, ContactEmail, ContactPhone
from eakte.db import Base
from eakte.documents.models import Document, DocumentVersion
from eakte.files.models import File, FileContact, Process, ReferenceCounter
from eakte.orgunits.models import OrgUnit
from eakte.plan.models import FilePlanItem

__all__ = [
    "ApiKey",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Contact",
    "ContactEmail",
    "ContactPhone",
    "Document",
    "DocumentVersion",
    "File",
    "FileContact",
    "FilePlanItem",
    "OrgUnit",
    "Process",
    "ReferenceCounter",
]
