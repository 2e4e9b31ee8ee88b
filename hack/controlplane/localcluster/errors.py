"""The launcher's one error type: the control plane could not be built, started or reached."""

from __future__ import annotations

from hostkit.errors import HostError

# The toolkit's errors (a process that would not start, a PKI file that would not load) are
# the launcher's: one name for all of them.
ControlPlaneError = HostError
