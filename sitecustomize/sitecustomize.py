"""Activates autologagent in every Python process that has this folder on PYTHONPATH.

Then runs the ``sitecustomize`` this file shadows, if any, as if it were alone.
"""

import os

os.environ.setdefault("AUTOLOG", "1")
try:
    from autologagent._sitecustomize_chain import activate_and_chain

    activate_and_chain(__file__)
except ImportError:  # the agent is not installed in this interpreter
    pass
