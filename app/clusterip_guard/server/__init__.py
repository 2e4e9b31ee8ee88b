"""The HTTP edge: the webhook app, TLS and certificate reloading, file watching, metrics, logs."""
