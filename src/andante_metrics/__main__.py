"""Allow ``python -m andante_metrics``."""

import sys

from andante_metrics.cli import main

sys.exit(main())
