"""``python -m celline_jobs_nb ...`` is ``celline-jobs ...``."""

import sys

from .cli import main

sys.exit(main())
