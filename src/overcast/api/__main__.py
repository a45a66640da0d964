import sys

from overcast.api.server import main

sys.exit(main())
