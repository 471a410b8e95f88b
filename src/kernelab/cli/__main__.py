"""``python -m kernelab.cli``."""

import sys

from . import main

sys.exit(main())
