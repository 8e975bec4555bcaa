"""Ingest gateway: department systems POST dossier events as JSON over HTTP (issue 8)."""
