"""`python -m bench` (also `backcheck bench`): the benchmark suite, bench/run.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts import one another

from run import main

sys.exit(main())
