"""The local job wrapper's former module path: ``python -m celline_jobs_nb.schedulers.local_runner``.

Kept because a wrapper of an earlier version, still running after an upgrade, starts the next
waiting jobs with this path. The wrapper is ``schedulers/local/runner.py``.
"""

import sys

from .local.runner import main

if __name__ == "__main__":
    sys.exit(main())
