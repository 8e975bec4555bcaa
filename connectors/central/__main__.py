"""``python -m lienthong.connectors.central``."""

from lienthong.connectors.central.connector import main

raise SystemExit(main())
