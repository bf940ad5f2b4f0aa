"""`python -m netsim` is the `netsim` command."""

import sys

from netsim.cli import main

sys.exit(main())
