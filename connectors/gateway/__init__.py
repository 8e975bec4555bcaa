"""Ingest gateway: department systems POST dossier events as JSON over HTTP (issue 8).

See :mod:`lienthong.connectors.gateway.app` and docs/connectors/gateway.md.
"""
