"""The cluster edge: the only code that talks to the Kubernetes API (client and errors,
certificate stores, the bootstrap; scan and reports will live here too)."""
