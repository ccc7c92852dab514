"""`python -m server.cli ...`: the `phonescreen` command (tests and scripts run it this way)."""
import sys

from server.cli import main

if __name__ == "__main__":
    sys.exit(main())
