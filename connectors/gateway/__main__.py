"""``python -m lienthong.connectors.gateway``: run the ingest gateway."""

from lienthong.connectors.gateway.app import main

raise SystemExit(main())
