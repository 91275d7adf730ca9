"""``python -m autologagent``: the command line (see ``_cli``)."""

import sys

from autologagent._cli import main

sys.exit(main())
