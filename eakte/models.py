"""Imports every table, so Alembic and the tests see the whole schema.

Feature packages (inbox, cti_bridge, retention) register their tables here too: this
module is part of the composition root, like the app factory and the CLI.
"""

from cti_bridge.models import Extension
from eakte.audit.models import AuditEvent, AuditHead
from eakte.auth.models import ApiKey
from eakte.contacts.models import Contact, ContactEmail, ContactPhone
from eakte.db import Base
from eakte.documents.models import Document, DocumentVersion
from eakte.files.models import File, FileContact, Process, ReferenceCounter
from eakte.idempotency.models import IdempotencyRecord
from eakte.orgunits.models import OrgUnit
from eakte.outgoing.models import Letter, LetterTemplate, PrintBatch
from eakte.plan.models import FilePlanItem
from eakte.worklist.models import AccessGrant, KnownPrincipal, WorkItem
from inbox.models import InboundItem, InboundPart, MailReceipt
from retention.models import (
    DisposalItem,
    DisposalRecord,
    DisposalRun,
    FixityReport,
    Hold,
)

__all__ = [
    "AccessGrant",
    "ApiKey",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Contact",
    "ContactEmail",
    "ContactPhone",
    "DisposalItem",
    "DisposalRecord",
    "DisposalRun",
    "Document",
    "DocumentVersion",
    "Extension",
    "File",
    "FileContact",
    "FilePlanItem",
    "FixityReport",
    "Hold",
    "IdempotencyRecord",
    "InboundItem",
    "InboundPart",
    "KnownPrincipal",
    "Letter",
    "LetterTemplate",
    "MailReceipt",
    "OrgUnit",
    "PrintBatch",
    "Process",
    "ReferenceCounter",
    "WorkItem",
]
