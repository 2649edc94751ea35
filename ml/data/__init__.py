"""Data: the canonical schema, readers for files and databases, validation, indexing of events."""
