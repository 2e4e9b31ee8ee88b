"""Connecting to the API server, and turning its failures into one line for the admin.

Which cluster is kubectl's choice (`cluster.kubeconfig`): `--kubeconfig`, then $KUBECONFIG,
then ~/.kube/config, then the pod's service account.
"""

from __future__ import annotations

import json
import os
import re
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError as TransportError
from urllib3.exceptions import (
    LocationParseError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.exceptions import SSLError as TransportSSLError

from clusterip_guard.cluster.errors import (
    ClusterError,
    ClusterRefused,
    ClusterUnreachable,
    KubeconfigError,
)
from clusterip_guard.cluster.kubeconfig import check_kubeconfig, kubeconfig_source
from clusterip_guard.cluster.limits import patiently
from clusterip_guard.core.types import Manifest

T = TypeVar("T")

HTTP_UNAUTHORIZED = 401
HTTP_FORBIDDEN = 403
HTTP_NOT_FOUND = 404


@dataclass
class RunLog:
    """What a run did, one line per object, in order; with --dry-run, the objects instead,
    and comments on what is not an object (the files it would write)."""

    lines: list[str] = field(default_factory=list)
    objects: list[Manifest] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)


def connect(
    kubeconfig: str | None = None,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> client.ApiClient:
    source = kubeconfig_source(kubeconfig, os.environ if environ is None else environ)
    configuration = client.Configuration()
    if source.in_cluster:
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except (ConfigException, OSError) as error:
            raise KubeconfigError(
                f"in a pod, but its service account cannot be used ({_one_line(error)}); "
                f"give --kubeconfig FILE"
            ) from None
        return client.ApiClient(configuration)
    check_kubeconfig(source, context)
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.pathsep.join(str(f) for f in source.files),
            context=context,
            client_configuration=configuration,
        )
    # The client library reports a broken kubeconfig in many ways (a missing certificate
    # file, data that is not base64, a field of the wrong type): each is the file's fault.
    except (ConfigException, OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise KubeconfigError(f"{source.describe()} cannot be used: {_one_line(error)}") from None
    return client.ApiClient(configuration)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


@contextmanager
def session(kubeconfig: str | None, context: str | None) -> Iterator[client.ApiClient]:
    """An API client for the cluster kubectl would choose, closed afterwards."""
    api = connect(kubeconfig, context)
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]


def failure(error: Exception, verb: str, resource: str, namespace: str | None) -> ClusterError:
    """One line for the admin, naming what was tried where, and the one fact that failed."""
    tried = described(verb, resource, namespace)
    if isinstance(error, ApiException):
        if error.status == HTTP_FORBIDDEN:
            return ClusterRefused(
                f"permission denied: cannot {tried}; grant it with RBAC or run as a cluster admin"
            )
        if error.status == HTTP_UNAUTHORIZED:
            return ClusterRefused(
                f"the API server did not accept our credentials (401 Unauthorized) to {tried}: "
                "check the kubeconfig's user (an expired token?)"
            )
        said = api_message(error)
        return ClusterRefused(
            f"cannot {tried}: {error.status} {error.reason}" + (f": {said}" if said else "")
        )
    return transport_failure(error)


def api_message(error: ApiException) -> str | None:
    """The API server's own words: the `message` of the Status it answered with (for a 422,
    the field and what is wrong with it)."""
    body = error.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str):
        return None
    try:
        status = json.loads(body)
    except ValueError:
        return None
    message = status.get("message") if isinstance(status, dict) else None
    return " ".join(message.split()) if isinstance(message, str) and message else None


def transport_failure(error: BaseException) -> ClusterError:
    """No answer from the API server: which server, and why."""
    reason: BaseException = error
    server = "the API server"
    if isinstance(error, MaxRetryError):
        pool = error.pool
        server = f"{pool.scheme}://{pool.host}:{pool.port}" if pool is not None else server
        reason = error.reason or error
    if isinstance(reason, LocationParseError):
        return KubeconfigError(
            f"the kubeconfig's server is not a URL ({_one_line(reason)}); "
            f"it should read https://HOST:PORT"
        )
    verification = _verification_error(reason)
    if verification is not None:
        return ClusterUnreachable(
            f"TLS verification of {server} failed: {verification.verify_message}; the "
            f"kubeconfig's certificate-authority must be the CA that signed the API server's "
            f"certificate, for the name in its server address"
        )
    if isinstance(reason, TransportSSLError | ssl.SSLError):
        return ClusterUnreachable(f"no TLS connection to {server}: {_one_line(reason)}")
    if isinstance(reason, NameResolutionError):
        return ClusterUnreachable(f"no cluster reachable at {server}: its name does not resolve")
    if isinstance(reason, NewConnectionError):
        said = re.sub(r"^.*Failed to establish a new connection: (\[Errno -?\d+\] )?", "",
                      _one_line(reason))  # fmt: skip
        return ClusterUnreachable(f"no cluster reachable at {server}: {said.lower()}")
    return ClusterUnreachable(f"no cluster reachable at {server}: {_one_line(reason)}")


def _verification_error(error: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure inside a transport error, if that is what it is."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        pending += [a for a in current.args if isinstance(a, BaseException)]
        pending += [c for c in (current.__cause__, current.__context__) if c is not None]
    return None


def described(verb: str, resource: str, namespace: str | None) -> str:
    """A request as RBAC names it: "list services in namespace shop"."""
    return f"{verb} {resource}" + (f" in namespace {namespace}" if namespace else "")


def call(verb: str, resource: str, namespace: str | None, request: Callable[[], T]) -> T:
    """Run one API request (again while the API server throttles it: cluster/limits.py);
    turn its failure into a one-line ClusterError."""
    try:
        return patiently(request, described(verb, resource, namespace))
    except (ApiException, TransportError, OSError) as error:
        raise failure(error, verb, resource, namespace) from error


def read_or_none(
    verb: str, resource: str, namespace: str | None, read: Callable[[], T]
) -> T | None:
    """Like `call`, but a missing object is None rather than an error."""
    try:
        return patiently(read, described(verb, resource, namespace))
    except ApiException as error:
        if error.status == HTTP_NOT_FOUND:
            return None
        raise failure(error, verb, resource, namespace) from error
    except (TransportError, OSError) as error:
        raise failure(error, verb, resource, namespace) from error
