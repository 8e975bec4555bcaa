"""``python -m lienthong.connectors.portal``."""

from lienthong.connectors.portal.connector import main

raise SystemExit(main())
