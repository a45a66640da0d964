"""``python -m overcast.agent``."""

import sys

from overcast.agent.main import main

sys.exit(main())
