"""The command line: one module per command; `main` maps every error to an exit code."""
