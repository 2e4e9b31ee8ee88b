"""`python hack/controlplane/localcluster ACTION` or `python -m localcluster ACTION`."""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a folder: make the package and the toolkit importable by name
    sys.path[:0] = [
        str(Path(__file__).resolve().parents[1]),
        str(Path(__file__).resolve().parents[2]),
    ]

from localcluster.launcher import main

sys.exit(main())
