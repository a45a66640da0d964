"""``python -m overcast.lab``."""

import sys

from overcast.lab.cli import main

sys.exit(main())
