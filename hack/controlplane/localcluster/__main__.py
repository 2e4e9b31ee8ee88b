"""`python hack/controlplane/localcluster ACTION` or `python -m localcluster ACTION`."""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a folder: make the package importable by its name
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localcluster.launcher import main

sys.exit(main())
