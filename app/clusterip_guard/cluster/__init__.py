"""The cluster edge: the only code that talks to the Kubernetes API: the client and its
errors, where certificates are stored, and the bootstrap."""
