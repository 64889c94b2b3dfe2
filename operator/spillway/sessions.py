"""The session store's part of a reconcile: the generated password kept once, the store's
objects applied where they differ, the role label moved to the primary the sentinels name, an
External reference checked; and what the app's containers receive.

Talks to the cluster through the `Cluster` port and to the sentinels through `RedisPort`;
every decision is in the pure `spillway.resources.sessionstore`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spillway.api.spec import ScalableServiceSpec
from spillway.ports import Cluster, RedisPort
from spillway.resources import sessionstore as store
from spillway.children import apply_changed, check_owner, controlled_by, remove_owned, retire_configs
from spillway.resources.meta import Owner, selector_labels
from spillway.resources.workload import SESSION_STORE_CHECKSUM

PROBE_TIMEOUT_SECONDS = 1.0
# What a provisioned store is made of, listed by its labels when it is removed or changes mode.
# Secrets are not listed: the operator may create and patch them, never list or delete them; the
# owner reference removes them with the ScalableService.
KINDS = [("apps/v1", "StatefulSet"), ("v1", "Service"), ("policy/v1", "PodDisruptionBudget"),
         ("networking.k8s.io/v1", "NetworkPolicy")]
# A running component's ConfigMaps are retired once no pod mounts them (content-named, a pod of an
# old one may restart); a component that no longer runs loses them with the rest.
CONFIG_MAP = ("v1", "ConfigMap")
COMPONENTS = (store.REDIS, store.SENTINEL)


@dataclass
class StoreOutcome:
    """What the reconcile does with the store: the app's env and the checksum that rolls it, the
    SessionStoreReady condition (None: remove it) and status.sessionStore."""

    env: list[dict[str, Any]] = field(default_factory=list)
    checksum: str | None = None
    condition: tuple[bool, str, str] | None = None
    status: dict[str, Any] | None = None
    writes: int = 0
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


def reconcile_store(cluster: Cluster, probe: RedisPort | None, owner: Owner, spec: ScalableServiceSpec,
                    app_selector: dict[str, str], cleanup: bool, operator: dict[str, Any] | None = None,
                    new_password: Callable[[], str] = lambda: secrets.token_urlsafe(32), rotate: str = "",
                    deployments: list[dict[str, Any]] | None = None) -> StoreOutcome:
    """`rotate` is the token of the password rotation asked for (the
    `spillway.io/rotate-session-password` annotation); `deployments` the app's live Deployments,
    whose rollout ends a rotation."""
    kind = spec.session_store.type
    if kind == "Redis":
        outcome = _provisioned(cluster, probe, owner, spec, app_selector, cleanup, operator, new_password,
                               rotate if spec.target_ref is None else "", deployments or [])
    elif kind == "External":
        outcome = _external(cluster, owner, spec)
    else:
        outcome = StoreOutcome()
    if kind != "Redis" and cleanup:
        outcome.writes += _remove(cluster, owner, set())
    if spec.target_ref is not None and outcome.env and outcome.condition is not None:
        # An adopted Deployment is only ever scaled: its containers are the user's to change.
        ok, reason, message = outcome.condition
        secret = (outcome.status or {}).get("secretName")
        outcome.condition = (ok, reason, f"{message} The adopted Deployment {spec.target_ref.name!r} is not changed: "
                                         f"reference Secret {secret!r} from its containers yourself.")
        outcome.env, outcome.checksum = [], None
    return outcome


def _external(cluster: Cluster, owner: Owner, spec: ScalableServiceSpec) -> StoreOutcome:
    assert spec.session_store.external is not None
    ref = spec.session_store.external.url_secret_ref
    secret = cluster.get("v1", "Secret", owner.namespace, ref.name)
    value = store.secret_text(secret).get(ref.key)
    problem = store.external_problem(spec, secret, value)
    status = store.status(owner, spec, None)
    if problem is not None:
        # Nothing is injected until the reference is usable: an app never gets a broken URL.
        return StoreOutcome(condition=(False, problem[0], problem[1]), status=status)
    return StoreOutcome(env=store.app_env(owner, spec), condition=(True, "ExternalStore", (
        f"The app receives {spec.session_store.env} from Secret {ref.name!r} key {ref.key!r}.")), status=status)


def _provisioned(cluster: Cluster, probe: RedisPort | None, owner: Owner, spec: ScalableServiceSpec,
                 app_selector: dict[str, str], cleanup: bool, operator: dict[str, Any] | None,
                 new_password: Callable[[], str], rotate: str, deployments: list[dict[str, Any]]) -> StoreOutcome:
    outcome = StoreOutcome(status=store.status(owner, spec, None))
    try:
        store.max_memory_bytes(spec)
    except ValueError as err:
        outcome.condition = (False, "InvalidSettings", str(err))
        return outcome
    name = store.password_name(owner)
    root = cluster.get("v1", "Secret", owner.namespace, name)  # read once for both steps below
    check_owner(owner.uid, "Secret", name, root)  # someone else's Secret of that name is never the root
    lost = _credentials_lost(cluster, owner, root)
    if lost is not None:
        # Nothing changes: not the store, not the app (its env and checksum stay as they run).
        outcome.condition = (False, "CredentialsLost", lost)
        outcome.env = store.app_env(owner, spec)
        outcome.checksum = next((c for d in deployments if (c := _checksum_of(d)) is not None), None)
        return outcome
    password, outcome.writes = _password(cluster, owner, root, new_password)
    server = cluster.get("v1", "Secret", owner.namespace, store.redis_name(owner))
    rotation, blocked = _rotate(cluster, probe, owner, spec, password, server, rotate, deployments, outcome)
    objects = store.build(owner, spec, password, app_selector, operator, rotation)
    live: dict[tuple[str, str], dict[str, Any] | None] = {}
    for obj in objects:
        current = server if (obj["kind"], obj["metadata"]["name"]) == ("Secret", store.redis_name(owner)) else \
            cluster.get(obj["apiVersion"], obj["kind"], owner.namespace, obj["metadata"]["name"])
        found, wrote = apply_changed(cluster, obj, current)
        outcome.writes += wrote
        live[(obj["kind"], obj["metadata"]["name"])] = found
    running = COMPONENTS if store.sentinel_mode(spec) else (store.REDIS,)
    if cleanup:
        outcome.writes += _remove(cluster, owner, {(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects},
                                  running)
    configs = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    outcome.writes += sum(retire_configs(cluster, owner, c, (c,), configs) for c in running)
    observed = store.Observed(redis=live.get(("StatefulSet", store.redis_name(owner))))
    if store.sentinel_mode(spec):
        follow = follow_primary(cluster, probe, owner, store.user_password(password, "admin"))
        outcome.writes += follow.writes
        observed = store.Observed(redis=observed.redis, sentinel=live.get(("StatefulSet", store.sentinel_name(owner))),
                                  view=follow.view, primary=follow.primary, labelled=follow.labelled)
        outcome.status = store.status(owner, spec, follow.primary)
    outcome.condition = store.readiness(owner, spec, observed)
    if outcome.condition[0] and rotation.previous is not None:
        outcome.condition = (True, outcome.condition[1], outcome.condition[2] + (
            " Rotating the app's password: both are accepted until every replica runs with the new one."))
    if blocked:
        outcome.condition = (False, "RotationBlocked", blocked)
    outcome.env = store.app_env(owner, spec)
    outcome.checksum = store.connection_checksum(owner, spec, password, rotation)
    return outcome


def _rotate(cluster: Cluster, probe: RedisPort | None, owner: Owner, spec: ScalableServiceSpec, password: str,
            server: dict[str, Any] | None, requested: str, deployments: list[dict[str, Any]],
            outcome: StoreOutcome) -> tuple[store.Rotation, str]:
    """The rotation in effect after this reconcile's step, and what blocks it ("" when nothing).
    Each live Redis is told first (ACLs are neither replicated nor re-read from the mounted
    file): the new password before the app is given it, the old one removed only once every
    replica runs with the new; only then does the server Secret record the step."""
    rotation = store.rotation_of(server)
    rolled = store.rolled_out(deployments, store.connection_checksum(owner, spec, password, rotation),
                              SESSION_STORE_CHECKSUM)
    following, action = store.next_rotation(requested, rotation, rolled)
    if not action:
        return rotation, ""
    if action == "add":
        rules = ["#" + store.password_hash(store.app_password(password, following.current))]
    else:
        assert rotation.previous is not None
        rules = ["!" + store.password_hash(store.app_password(password, rotation.previous))]
    pods = cluster.list("v1", "Pod", owner.namespace, selector_labels(owner, store.REDIS))
    addresses = sorted(ip for p in pods if (ip := (p.get("status") or {}).get("podIP")))
    problem = "no Redis client is configured" if probe is None and addresses else ""
    if probe is not None and addresses:
        problem = probe.set_user(addresses, store.REDIS_PORT, store.user_password(password, "admin"), "app", rules,
                                 PROBE_TIMEOUT_SECONDS)
    if problem:
        return rotation, (f"The app's password rotation waits: Redis did not take the "
                          f"{'new' if action == 'add' else 'old'} password's change ({problem}).")
    if action == "add":
        outcome.events.append(("Normal", "PasswordRotationStarted", (
            "Redis accepts the app's new password as well as the old; the app rolls onto the new one.")))
    else:
        outcome.events.append(("Normal", "PasswordRotated", (
            "Every replica runs with the app's new password; Redis no longer accepts the old one.")))
    return following, ""


def _credentials_lost(cluster: Cluster, owner: Owner, secret: dict[str, Any] | None) -> str | None:
    """Why the store cannot go on, when its Redis runs (its StatefulSet is this ScalableService's)
    but the root password Secret (`secret`, as read) is gone or holds no usable password: a new
    password would not reach the running Redis (its users were made from the old one) and would
    lock the app out. The StatefulSet is read only when the password is unusable."""
    if store.stored_password(secret) is not None:
        return None
    redis = cluster.get("apps/v1", "StatefulSet", owner.namespace, store.redis_name(owner))
    if redis is None or not controlled_by(redis, owner.uid):
        return None
    name = store.password_name(owner)
    state = "is gone" if secret is None else "holds no usable password"
    return (f"Secret {name!r}, the session store's root password, {state} while Redis runs with the one it held. "
            "Spillway changes nothing: a new password would lock the app out of its sessions. Restore the Secret "
            f"from a backup, or delete StatefulSet {store.redis_name(owner)!r} to start the store afresh with a new "
            "password (its sessions are lost).")


def _checksum_of(deployment: dict[str, Any]) -> str | None:
    template = (deployment.get("spec") or {}).get("template") or {}
    found = ((template.get("metadata") or {}).get("annotations") or {}).get(SESSION_STORE_CHECKSUM)
    return found if isinstance(found, str) else None


def _password(cluster: Cluster, owner: Owner, found: dict[str, Any] | None,
              new_password: Callable[[], str]) -> tuple[str, int]:
    """The generated password: read from its Secret, or generated and the Secret created (a POST:
    if another writer created it meanwhile, theirs stands and is read back). Called only while no
    Redis of this store runs, or with a usable password (`_credentials_lost` stops the rest).
    `found`: the Secret as read, already checked to be this store's."""
    name = store.password_name(owner)
    password = store.stored_password(found)
    if password is not None:
        return password, 0
    cluster.create(store.password_secret(owner, new_password()))
    found = cluster.get("v1", "Secret", owner.namespace, name)
    check_owner(owner.uid, "Secret", name, found)  # another writer's, created meanwhile
    password = store.stored_password(found)
    if password is None:
        password = new_password()
        cluster.apply(store.password_secret(owner, password))
        return password, 2
    return password, 1


@dataclass(frozen=True)
class Follow:
    view: store.SentinelView
    primary: str | None
    labelled: bool
    writes: int


def follow_primary(cluster: Cluster, probe: RedisPort | None, owner: Owner, admin_password: str) -> Follow:
    """Ask the sentinels (as admin) which pod is the primary and move the role label there, so
    that `<name>-redis-primary` selects it. Nothing moves while they disagree or cannot be asked."""
    sentinels = cluster.list("v1", "Pod", owner.namespace, selector_labels(owner, store.SENTINEL))
    addresses = sorted(ip for p in sentinels if (ip := (p.get("status") or {}).get("podIP")))
    if probe is None:
        view = store.SentinelView(problem="no sentinel probe is configured")
    elif not addresses:
        view = store.SentinelView(problem="no sentinel pod has an IP yet")
    else:
        view = probe.ask(addresses, store.SENTINEL_PORT, store.master_name(owner), admin_password,
                         PROBE_TIMEOUT_SECONDS)
    host = store.agreed_primary(view.primaries)
    primary = store.pod_of(host) if host else None
    pods = cluster.list("v1", "Pod", owner.namespace, selector_labels(owner, store.REDIS))
    if primary is not None and primary not in {p["metadata"]["name"] for p in pods}:
        primary = None  # a name from another store, or a pod gone: never label by guess
    changes = store.label_changes(pods, primary)
    # The new primary first: the write Service never selects nothing longer than it must.
    for name, value in sorted(changes.items(), key=lambda c: c[1] is None):
        cluster.label("v1", "Pod", owner.namespace, name, {store.ROLE_LABEL: value})
    return Follow(view=view, primary=primary, labelled=primary is not None, writes=len(changes))


class Follower:
    """Watches one Sentinel-mode store's sentinels between reconciles, cheaply: it keeps their
    addresses and the last primary seen labelled, so a quiet second costs one question per
    sentinel and no API request. `changed` names the primary the sentinels agree on when it is
    not that one (the reconcile then moves the label and reports); `settle` marks it seen only
    once its pod carries the label, so a reconcile that could not move it (an API error, the
    sentinels disagreeing for that moment) is tried again at the next look."""

    def __init__(self) -> None:
        self.addresses: list[str] = []
        self.admin_password = ""
        self.primary: str | None = None

    def changed(self, cluster: Cluster, probe: RedisPort, owner: Owner) -> str | None:
        if not self.addresses:
            # The admin password is read with the addresses (the sentinels' default user is off),
            # from the generated one, and again whenever an address is: a lost Secret stops the looks.
            root = store.stored_password(cluster.get("v1", "Secret", owner.namespace, store.password_name(owner)))
            if root is None:
                return None
            self.admin_password = store.user_password(root, "admin")
            sentinels = cluster.list("v1", "Pod", owner.namespace, selector_labels(owner, store.SENTINEL))
            self.addresses = sorted(ip for p in sentinels if (ip := (p.get("status") or {}).get("podIP")))
            if not self.addresses:
                return None
        view = probe.ask(self.addresses, store.SENTINEL_PORT, store.master_name(owner), self.admin_password,
                         PROBE_TIMEOUT_SECONDS)
        if any(p is None for p in view.primaries):
            self.addresses = []  # a sentinel moved, is down or refused: look it up again next time
        host = store.agreed_primary(view.primaries)
        primary = store.pod_of(host) if host else None
        return None if primary is None or primary == self.primary else primary

    def settle(self, cluster: Cluster, owner: Owner, primary: str) -> bool:
        """Whether `primary`'s pod carries the primary role label; if so it is the one seen."""
        pod = cluster.get("v1", "Pod", owner.namespace, primary) or {}
        if ((pod.get("metadata") or {}).get("labels") or {}).get(store.ROLE_LABEL) != store.PRIMARY:
            return False
        self.primary = primary
        return True


def _remove(cluster: Cluster, owner: Owner, wanted: set[tuple[str, str, str]], running: tuple[str, ...] = ()) -> int:
    return sum(remove_owned(cluster, owner, c, KINDS if c in running else [*KINDS, CONFIG_MAP], wanted)
               for c in COMPONENTS)
