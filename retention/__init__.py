"""Retention: closure, due dates, holds, disposal and archive handover per the file plan."""
