"""``python -m lienthong.connectors.postal``."""

from lienthong.connectors.postal.connector import main

raise SystemExit(main())
