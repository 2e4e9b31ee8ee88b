"""The pure core: plain data in, plain data out (docs/design.md, "Layers").

Nothing here imports FastAPI, Starlette, uvicorn, the Kubernetes client or PyYAML, and nothing
here reads files or the network; ruff's banned-api rule holds that (pyproject.toml).
"""
