"""What the reconcile needs from the cluster, as a protocol: `spillway.kube.Cluster` is the real
one, tests pass a fake. Keeps the reconcile free of any client library."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from spillway.resources.sessionstore.state import SentinelView


class ClusterError(Exception):
    """The cluster refused or failed a request.

    `retryable` is False for a refusal that repeating cannot fix (422 Invalid, 403 Forbidden,
    404 on a kind the cluster lacks); the message is the API server's own.
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class Cluster(Protocol):
    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    def list(self, api_version: str, kind: str, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]: ...

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]: ...

    def create(self, obj: dict[str, Any]) -> None:
        """Create `obj` (a POST: only the `create` verb, unlike server-side apply's `patch`);
        an object already there is left as it is."""
        ...

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None: ...

    def scale(self, api_version: str, kind: str, namespace: str, name: str, replicas: int) -> None: ...

    def label(self, api_version: str, kind: str, namespace: str, name: str, labels: dict[str, str | None]) -> None:
        """Set (or, for None, remove) labels of one object with a merge patch."""
        ...

    def patch_status(self, body: dict[str, Any], status: dict[str, Any]) -> None: ...

    def event(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None: ...

    def crd(self, name: str) -> dict[str, Any] | None:
        """The CustomResourceDefinition `name` (e.g. httproutes.gateway.networking.k8s.io), or
        None when the cluster has none; may be cached for a minute."""
        ...


class RedisPort(Protocol):
    def ask(self, addresses: list[str], port: int, master: str, admin_password: str,
            timeout_seconds: float) -> SentinelView:
        """Ask each sentinel at `addresses`, as the admin user, which primary it monitors for
        `master` and whether it sees a quorum; never raises (what failed is in the view's
        `problem`)."""
        ...

    def set_user(self, addresses: list[str], port: int, admin_password: str, user: str, rules: list[str],
                 timeout_seconds: float) -> str:
        """ACL SETUSER `user` `rules` as the admin user on every Redis at `addresses` (ACLs are not
        replicated); "" when every one did, else what failed. Never raises."""
        ...


@dataclass(frozen=True)
class Credentials:
    """How to reach Prometheus, with values already read from Secrets."""

    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    ca_pem: str | None = None  # the CA bundle itself, held in memory (never written to a file)
    insecure_skip_verify: bool = False

    def __repr__(self) -> str:  # never print a secret, even in a traceback
        return "Credentials(<redacted>)"


@dataclass(frozen=True)
class Reading:
    values: dict[str, float]
    missing: dict[str, str] = field(default_factory=dict)  # signal -> why it has no value


class SignalSource(Protocol):
    def read(self, url: str, timeout_seconds: float, credentials: Credentials, queries: dict[str, str],
             max_age_seconds: float) -> Reading: ...


@dataclass(frozen=True)
class GroupedQuery:
    """One signal's query for every service at once (`sum by` the labels that tell services
    apart), and the labels of this service's row in its answer."""

    query: str
    row: tuple[tuple[str, str], ...]


@runtime_checkable
class GroupedSignalSource(SignalSource, Protocol):
    """A source that can answer many services from one query: services sharing a Prometheus, its
    credentials and a grouped query get one answer, each taking its own row."""

    def read_grouped(self, url: str, timeout_seconds: float, credentials: Credentials,
                     queries: dict[str, GroupedQuery], max_age_seconds: float,
                     interval_seconds: float) -> Reading: ...
