import sys

from gulm.cli import main

sys.exit(main())
