# clusterip-guard container image.
#
# Installs only from the wheelhouse/ folder of the build context, never from a package index:
# fill it on the host first (`hack/image/wheelhouse.sh`, or on Linux x86_64 with Python 3.11
# `pip wheel --wheel-dir wheelhouse . pip`; see hack/image/README.md). The same
# wheelhouse gives the same image, so this is also how reproducible builds are done.
#
# BASE must give a `python3` (3.11) with the venv module. Both stages use it, so the venv built
# in the first runs unchanged in the second. Default: the public Python image; on machines
# without a registry hack/image/base.sh makes a Debian bookworm one with debootstrap.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
COPY wheelhouse/ /wheelhouse/
# A venv without pip; pip runs from its own wheel in the wheelhouse, so neither the base nor
# the venv needs pip or ensurepip. Binary wheels only: no compiler is ever called. The byte
# code is compiled here with hashes that need no source timestamps, so the read-only final
# image never compiles or writes anything.
RUN set -eu; \
    python3 -m venv --without-pip /opt/venv; \
    set -- /wheelhouse/pip-*.whl; \
    [ -f "$1" ] || { echo "no pip wheel in wheelhouse/: see hack/image/README.md" >&2; exit 1; }; \
    /opt/venv/bin/python "$1/pip" install --no-index --find-links=/wheelhouse \
        --only-binary=:all: --no-compile clusterip-guard; \
    /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv; \
    /opt/venv/bin/clusterip-guard --version

FROM ${BASE}
ARG VERSION=0.1.0
# The repository URL; hack/image/build.sh passes the git remote when there is one.
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="clusterip-guard" \
      org.opencontainers.image.description="Kubernetes admission webhook that keeps Services internal" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# Public Python images ship pip (and setuptools) in the system site-packages: drop them (the
# debootstrap base has none). Removal only hides them, it saves no space. The flag lets pip
# act on a base whose Python is marked externally managed, as Debian's is.
RUN if python3 -c 'import pip' 2>/dev/null; then \
        python3 -m pip uninstall --yes --quiet --break-system-packages pip setuptools wheel; \
    fi
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Numeric, so a runAsNonRoot pod can verify it without an /etc/passwd entry.
USER 65532:65532
# 8443: the webhook over HTTPS; 9090: plain-HTTP Prometheus /metrics.
EXPOSE 8443 9090
ENTRYPOINT ["clusterip-guard"]
# Where a kubernetes.io/tls Secret is mounted (see hack/image/README.md).
CMD ["serve", "--cert-file", "/etc/clusterip-guard/tls/tls.crt", "--key-file", "/etc/clusterip-guard/tls/tls.key"]
