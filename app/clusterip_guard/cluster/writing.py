"""One writer of objects for everything clusterip-guard stores in a cluster (its Secrets, its
admission objects, its reports), with one rule for each question a writer faces:

- Idempotence: an object is left alone when it is stored as wanted, meaning every field we set
  has the value we want (`stored_as_wanted`). Fields the API server defaults or adds are not
  ours and are not compared, so a second run changes nothing (the same resourceVersion); a
  field someone else changed is ours again after the next run. The admission objects carry a
  digest of what was asked (an annotation), so a field we stopped setting is never left over;
  and their fields that narrow what they judge are compared whole (cluster/narrowing.py), so a
  selector someone added is not "as wanted" because ours is empty.
- Conflicts: a write refused with 409 (someone wrote between our read and our write, or
  created it first) is read again and retried, a few times, then refused in one line.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from clusterip_guard.cluster.client import failure, read_or_none
from clusterip_guard.cluster.errors import ClusterRefused
from clusterip_guard.cluster.limits import patiently
from clusterip_guard.core.types import Manifest

HTTP_CONFLICT = 409
CONFLICT_RETRIES = 5

Written = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class ObjectAPI:
    """How to read, create and replace one object; `resource` and `namespace` name it in
    errors as RBAC does ("cannot update secrets in namespace x")."""

    resource: str
    namespace: str | None
    read: Callable[[], Manifest]  # as plain data; raises 404 when there is none
    create: Callable[[Manifest], Any]
    replace: Callable[[Manifest], Any]


def stored_as_wanted(wanted: object, stored: object) -> bool:
    """Every field of `wanted` has its value in `stored`: mappings by their keys (extra stored
    keys are the API server's), lists item by item and of the same length, the rest equal."""
    if isinstance(wanted, Mapping):
        return isinstance(stored, Mapping) and all(
            key in stored and stored_as_wanted(value, stored[key]) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(stored, list)
            and len(wanted) == len(stored)
            and all(stored_as_wanted(w, s) for w, s in zip(wanted, stored, strict=True))
        )
    return wanted == stored


def as_plain(api: client.ApiClient, model: object) -> Manifest:
    """A model the typed client answered with, as the plain data the API server sent."""
    plain = api.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
    return plain if isinstance(plain, dict) else {}


def read_stored(api: ObjectAPI) -> Manifest | None:
    """The object as stored, as plain data; None when there is none."""
    found = read_or_none("get", api.resource, api.namespace, api.read)
    return found if isinstance(found, dict) else None


def write_object(
    api: ObjectAPI,
    manifest: Manifest,
    *,
    prepare: Callable[[Manifest, Manifest | None], Manifest] = lambda wanted, _: wanted,
    stored: Manifest | Literal["read"] | None = "read",
    as_wanted: Callable[[Manifest, Manifest], bool] = stored_as_wanted,
) -> Written:
    """Create `manifest`, or replace the stored object when it is not stored as wanted.
    `prepare` may carry something of the stored object into what is written (a report keeps
    the timestamps of results that say the same). `stored`: the object as a list just read it
    (saves a read per object); it is read again only after a conflict. `as_wanted`: when the
    stored object needs no write (`stored_as_wanted` unless the kind asks for more)."""
    if stored == "read":
        stored = read_stored(api)
    for _ in range(CONFLICT_RETRIES):
        wanted = prepare(manifest, stored)
        if stored is not None and as_wanted(wanted, stored):
            return "unchanged"
        try:
            what = f"write {api.resource} {manifest['metadata']['name']}"
            if stored is None:
                patiently(functools.partial(api.create, wanted), what)
                return "created"
            version = stored["metadata"]["resourceVersion"]
            body = {**wanted, "metadata": {**wanted["metadata"], "resourceVersion": version}}
            patiently(functools.partial(api.replace, body), what)
            return "updated"
        except (ApiException, TransportError, OSError) as error:
            if not (isinstance(error, ApiException) and error.status == HTTP_CONFLICT):
                verb = "create" if stored is None else "update"
                raise failure(error, verb, api.resource, api.namespace) from error
        stored = read_stored(api)  # a conflict: what is stored now decides
    name = manifest["metadata"]["name"]
    raise ClusterRefused(
        f"cannot write {api.resource} {name}: it kept changing underneath "
        f"({CONFLICT_RETRIES} conflicts in a row)"
    )
