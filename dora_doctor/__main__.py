"""Allow ``python -m dora_doctor``."""

import sys

from dora_doctor.cli import main

sys.exit(main())
