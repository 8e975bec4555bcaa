"""``python -m lienthong`` runs the command line."""

import sys

from lienthong.cli.main import main

sys.exit(main())
