"""``python -m rank1_build``."""

import sys

from .cli import main

sys.exit(main())
