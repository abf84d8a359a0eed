"""``python -m sqhw.report``: the design-space report (see ``sqhw.report.cli``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
