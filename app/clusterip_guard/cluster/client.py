"""Connecting to the API server, and turning its failures into one line for the admin.

Kubeconfig precedence is kubectl's: an explicit file, then $KUBECONFIG (the client library
reads it), then the in-cluster service account.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError as TransportError

from clusterip_guard.cluster.errors import (
    ClusterError,
    ClusterRefused,
    ClusterUnreachable,
    KubeconfigError,
)
from clusterip_guard.core.types import Manifest

T = TypeVar("T")

HTTP_FORBIDDEN = 403
HTTP_NOT_FOUND = 404


@dataclass
class Report:
    """What a run did, one line per object, in order; with --dry-run, the objects instead."""

    lines: list[str] = field(default_factory=list)
    objects: list[Manifest] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)


def connect(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    try:
        in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        if kubeconfig is None and not os.environ.get("KUBECONFIG") and in_cluster:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return client.ApiClient()
        api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context
        )
    except (ConfigException, OSError) as error:
        raise KubeconfigError(f"no usable kubeconfig: {error}") from error
    return api


@contextmanager
def session(kubeconfig: str | None, context: str | None) -> Iterator[client.ApiClient]:
    api = connect(kubeconfig, context)
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]


def failure(error: Exception, verb: str, resource: str, namespace: str | None) -> ClusterError:
    """One line for the admin, naming what was tried where."""
    where = f" in namespace {namespace}" if namespace else ""
    if isinstance(error, ApiException):
        if error.status == HTTP_FORBIDDEN:
            return ClusterRefused(
                f"permission denied: cannot {verb} {resource}{where}; "
                f"grant it with RBAC or run as a cluster admin"
            )
        return ClusterRefused(f"cannot {verb} {resource}{where}: {error.status} {error.reason}")
    reason = getattr(error, "reason", None) or error
    return ClusterUnreachable(f"no cluster reachable: {' '.join(str(reason).split())}")


def call(verb: str, resource: str, namespace: str | None, request: Callable[[], T]) -> T:
    """Run one API request; turn its failure into a one-line ClusterError."""
    try:
        return request()
    except (ApiException, TransportError, OSError) as error:
        raise failure(error, verb, resource, namespace) from error


def read_or_none(
    verb: str, resource: str, namespace: str | None, read: Callable[[], T]
) -> T | None:
    """Like `call`, but a missing object is None rather than an error."""
    try:
        return read()
    except ApiException as error:
        if error.status == HTTP_NOT_FOUND:
            return None
        raise failure(error, verb, resource, namespace) from error
    except (TransportError, OSError) as error:
        raise failure(error, verb, resource, namespace) from error
