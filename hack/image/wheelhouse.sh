#!/usr/bin/env bash
# Fills the wheelhouse (the folder the Dockerfile installs from, with --no-index) on the host:
#   - the project's own wheel, built from pyproject.toml in a clean copy of the tree
#     (reproducible: fixed SOURCE_DATE_EPOCH), rebuilt every time;
#   - its dependencies and pip itself as binary wheels for the image's Python, CPython 3.11
#     on manylinux x86_64 with glibc <= 2.36 (Debian bookworm), whatever the host is;
#     fetched again only when pyproject.toml is newer than the last fetch (FORCE=1 refetches).
# Image builds cannot reach the package index here; this is the only step that needs it.
#
#   WHEELHOUSE  target folder (default wheelhouse/ at the repo root, what the Dockerfile copies)
#   PYTHON      host Python used to drive pip (default python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
WHEELHOUSE=${WHEELHOUSE:-wheelhouse}
PYTHON=${PYTHON:-python3}
# The image's Python and C library: wheels must match these, not the host.
# pip does not widen --platform to older glibc versions itself: every accepted tag is listed.
TARGET=(--only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 --abi abi3
    --abi none --platform any)
for glibc_minor in $(seq 36 -1 5); do TARGET+=(--platform "manylinux_2_${glibc_minor}_x86_64"); done
TARGET+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
# This machine sets PIP_FIND_LINKS to a folder of its own; only the index counts here.
export PIP_FIND_LINKS="" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

mkdir -p "$WHEELHOUSE" .dev/image
# A small venv with the build backend, so building our wheel needs no index once it exists.
tools=.dev/image/tools
if [[ ! -x $tools/bin/pip || pyproject.toml -nt $tools/.installed ]]; then
    rm -rf "$tools"
    "$PYTHON" -m venv "$tools"
    build_requires=$("$PYTHON" -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')
    # shellcheck disable=SC2086 # one word per requirement
    "$tools/bin/pip" install --quiet --upgrade pip wheel $build_requires
    touch "$tools/.installed"
fi

# Our wheel, from a copy of the working tree without caches or old build/ output (setuptools
# reuses build/lib and would package modules that no longer exist).
src=$(mktemp -d "${TMPDIR:-/tmp}/clusterip-guard-src.XXXXXX")
trap 'rm -rf "$src"' EXIT
tar -C "$root" -cf - --exclude=./.git --exclude=./.venv --exclude=./.dev --exclude=./build \
    --exclude="./$WHEELHOUSE" --exclude='*.egg-info' --exclude=__pycache__ \
    --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache --exclude=.hypothesis \
    . | tar -C "$src" -xf -
# Fixed zip times (1980-01-01, the zip epoch): the wheel's bytes depend on its content only,
# so a commit that leaves the package alone keeps the builder's layer cache.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}
rm -f "$WHEELHOUSE"/clusterip_guard-*.whl
"$tools/bin/pip" wheel --quiet --no-deps --no-build-isolation --wheel-dir "$src/dist" "$src"
cp "$src"/dist/clusterip_guard-*.whl "$WHEELHOUSE"/
project_wheel=$(echo "$WHEELHOUSE"/clusterip_guard-*.whl)

stamp=$WHEELHOUSE/.dependencies
if [[ ${FORCE:-0} == 1 || ! -e $stamp || pyproject.toml -nt $stamp ]]; then
    # Start clean so no wheel of an older dependency set lingers.
    find "$WHEELHOUSE" -maxdepth 1 -name '*.whl' ! -name 'clusterip_guard-*' -delete
    "$tools/bin/pip" download --quiet --dest "$WHEELHOUSE" "${TARGET[@]}" "$project_wheel" pip
    (cd "$WHEELHOUSE" && ls -1 ./*.whl | sed 's|^\./||' | grep -v '^clusterip_guard-') >"$stamp"
fi
echo "hack/image: wheelhouse $WHEELHOUSE: $(basename "$project_wheel") + $(wc -l <"$stamp") wheels"
