from lienthong.connectors.console.app import main

raise SystemExit(main())
