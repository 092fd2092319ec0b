import sys

from modelwatch_monitor.cli import main

sys.exit(main())
