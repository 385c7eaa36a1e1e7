"""``python -m pumba`` is the ``pumba`` command."""

import sys

from pumba.cli import main

sys.exit(main())
