"""One reconcile of a ScalableService: parse, build the whole desired state, apply what
differs, remove what is no longer wanted, report.

Level-triggered and idempotent: a second run over an unchanged resource writes nothing. A bad
spec changes nothing but the SpecValid condition. Talks to the cluster only through the
`Cluster` port; the clock is passed in.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from spillway import GROUP, KIND, VERSION
from spillway.api import SpecError, parse_spec
from spillway.api.spec import ScalableServiceSpec
from spillway.capacity import reconcile_headroom
from spillway.children import NameConflict, apply_changed, check_owner, remove_owned, retire_configs
from spillway.ports import Cluster, ClusterError, RedisPort
from spillway.api.status import find_condition
from spillway.reporting import Conditions, Outcome, Report
from spillway.resources import balancing
from spillway.resources.balancing import haproxy
from spillway.resources.balancing.base import Context, Plan, Requirement
from spillway.resources import headroom
from spillway.resources.meta import Owner, selector_string
from spillway.resources.sessionstore import ROTATE_ANNOTATION
from spillway.resources.workload import (
    APP,
    DEFAULT_REQUESTS,
    app_selector,
    build_app,
    defaulted_requests,
    deployment_name,
    pool_selector,
)
from spillway.scaling.bounds import standing_replicas
from spillway.sessions import StoreOutcome, reconcile_store

def reconcile(cluster: Cluster, body: dict[str, Any], now: datetime, probe: RedisPort | None = None,
              operator: dict[str, Any] | None = None, settings: headroom.Settings | None = None) -> Outcome:
    """`probe` asks a Sentinel-mode store's sentinels who the primary is; `operator` is the
    NetworkPolicy peer that lets the operator's pods reach them (None outside a cluster);
    `settings` the headroom placeholders' image and PriorityClass."""
    owner = Owner.from_body(body)
    status = body.get("status") or {}
    generation = body["metadata"].get("generation")
    conditions: Conditions = list(status.get("conditions") or [])
    report = Report(cluster, body, generation, now)

    def invalid(err: SpecError) -> Outcome:
        marked = report.set(conditions, "SpecValid", False, "InvalidSpec", str(err))
        marked = report.set(marked, "Ready", False, "InvalidSpec", "The spec is invalid; nothing was changed.")
        return report.publish({"conditions": marked}, ready=False, message=str(err))

    try:
        spec = parse_spec(body.get("spec") or {})
    except SpecError as err:
        return invalid(err)
    conditions = report.set(conditions, "SpecValid", *_spec_valid(spec))

    adopted = None
    if spec.target_ref is not None:
        adopted = cluster.get("apps/v1", "Deployment", owner.namespace, spec.target_ref.name)
        problem = _adoption_problem(spec, adopted) or _targeted_first_by(cluster, owner, spec.target_ref.name)
        if problem is not None:
            conditions = report.set(conditions, "Ready", False, *problem)
            return report.publish({"conditions": conditions}, ready=False, message=problem[1])

    live = _live_deployments(cluster, owner, spec, adopted)
    live_total = sum(d["spec"].get("replicas", 1) for d in live.values()) if live else None
    replicas = standing_replicas(spec.replicas, spec.scaling, status.get("desiredReplicas"), live_total)
    selector = app_selector(owner, spec, adopted)
    try:  # a renderer's own check of what it writes into a config file: the spec's second line
        plan = balancing.render(owner, spec, Context(
            selector=selector, pool_selectors={p.name: pool_selector(owner, p) for p in spec.pools}))
    except SpecError as err:
        return invalid(err)
    skipped, unserved = _unserved(cluster, plan.requires)
    # Objects a provider no longer uses are looked for on a new generation (listing them costs a
    # request per kind), and again while the last attempt failed.
    ready = next((c for c in conditions if c.get("type") == "Ready"), {})
    cleanup = status.get("observedGeneration") != generation or ready.get("reason") == "ApplyFailed"
    try:
        rotate = (body["metadata"].get("annotations") or {}).get(ROTATE_ANNOTATION, "")
        session = reconcile_store(cluster, probe, owner, spec, selector, cleanup, operator, rotate=rotate,
                                  deployments=list(live.values()))
        report.writes += session.writes
        for event in session.events:
            cluster.event(body, *event)
        applied = _apply_all(cluster, owner, spec, replicas, adopted, live, report, session)
        balancer_objects = [o for o in plan.objects if (o["apiVersion"], o["kind"]) not in skipped]
        applied_balancer = _apply_balancer(cluster, owner, spec, balancer_objects, report, cleanup)
        app_deployments = {d["metadata"]["name"]: d for d in ([adopted] if adopted is not None else applied)
                           if d is not None and d.get("kind", "Deployment") == "Deployment"}
        room = reconcile_headroom(cluster, owner, spec, replicas, app_deployments, settings or headroom.Settings(),
                                  cleanup, str((find_condition(conditions, "HeadroomReady") or {}).get("reason")))
        report.writes += room.writes
    except NameConflict as err:
        conditions = report.set(conditions, "Ready", False, "NameConflict", str(err))
        return report.publish({"conditions": conditions}, ready=False, message=str(err))
    except ClusterError as err:
        if err.retryable:
            raise
        conditions = report.set(conditions, "Ready", False, "ApplyFailed", str(err))
        return report.publish({"conditions": conditions}, ready=False, message=str(err))

    workloads = [adopted] if adopted is not None else [
        o for o in applied if o.get("kind") == "Deployment"
    ]
    running = sum((d.get("status") or {}).get("replicas", 0) for d in workloads if d)
    ready = sum((d.get("status") or {}).get("readyReplicas", 0) for d in workloads if d)
    all_ready = ready >= replicas
    conditions = report.set(
        conditions, "Ready", all_ready,
        "AllReplicasReady" if all_ready else "ReplicasNotReady",
        f"{ready} of {replicas} replicas are ready.",
    )
    conditions = report.set(conditions, "BalancerReady", *_balancer_ready(spec, plan, unserved, applied_balancer))
    if session.condition is None:
        conditions = report.drop(conditions, "SessionStoreReady")
    else:
        conditions = report.set(conditions, "SessionStoreReady", *session.condition)
    if room.condition is None:
        conditions = report.drop(conditions, "HeadroomReady")
    else:
        conditions = report.set(conditions, "HeadroomReady", *room.condition)
    balancer = plan.balancer
    fields = {
        "replicas": running,
        "readyReplicas": ready,
        "desiredReplicas": replicas,
        "selector": selector_string(selector),
        "balancer": {"provider": balancer.provider, "algorithm": balancer.algorithm, "endpoint": balancer.endpoint},
        "sessionStore": session.status,
        "conditions": conditions,
    }
    return report.publish(fields, ready=all_ready, message=f"{ready}/{replicas} ready")


def _spec_valid(spec: ScalableServiceSpec) -> tuple[bool, str, str]:
    """Valid, with a warning where Spillway filled in requests the template leaves out."""
    if spec.template is None:
        return True, "Valid", "The spec is valid."
    missing = defaulted_requests(spec.template.get("spec") or {})
    if not missing:
        return True, "Valid", "The spec is valid."
    stated = " and ".join(f"{q} {r}" for r, q in DEFAULT_REQUESTS.items())
    return True, "DefaultRequests", (
        f"The template states no request for {', '.join(missing)}: Spillway requests {stated} where one is missing. "
        "The scheduler and cluster autoscalers place and add nodes by requests; set resources.requests in the "
        "template to what one replica needs.")


def _adoption_problem(spec: ScalableServiceSpec, adopted: dict[str, Any] | None) -> tuple[str, str] | None:
    assert spec.target_ref is not None
    name = spec.target_ref.name
    if adopted is None:
        return "TargetNotFound", f"Deployment {name!r} (spec.targetRef) does not exist in this namespace."
    if not (adopted["spec"].get("selector") or {}).get("matchLabels"):
        return "TargetUnsupported", (
            f"Deployment {name!r} selects its pods with matchExpressions only; Spillway needs matchLabels.")
    return None


def _targeted_first_by(cluster: Cluster, owner: Owner, name: str) -> tuple[str, str] | None:
    """A problem when another ScalableService of this namespace targeted Deployment `name` before
    this one (the older keeps it; two would fight over its replica count)."""
    targeting = [s for s in cluster.list(f"{GROUP}/{VERSION}", KIND, owner.namespace, {})
                 if ((s.get("spec") or {}).get("targetRef") or {}).get("name") == name]
    first = min(targeting, key=lambda s: (s["metadata"].get("creationTimestamp") or "", s["metadata"]["name"]),
                default=None)
    if first is None or first["metadata"].get("uid") == owner.uid:
        return None
    return "TargetTaken", (f"Deployment {name!r} (spec.targetRef) is already scaled by ScalableService "
                           f"{first['metadata']['name']!r}; Spillway leaves it to that one.")


def _live_deployments(cluster: Cluster, owner: Owner, spec: ScalableServiceSpec,
                      adopted: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    if adopted is not None:
        return {adopted["metadata"]["name"]: adopted}
    names = [deployment_name(owner, p) for p in spec.pools] or [deployment_name(owner, None)]
    found = {n: cluster.get("apps/v1", "Deployment", owner.namespace, n) for n in names}
    return {n: d for n, d in found.items() if d is not None}


def _apply_all(cluster: Cluster, owner: Owner, spec: ScalableServiceSpec, replicas: int,
               adopted: dict[str, Any] | None, live_deployments: dict[str, dict[str, Any]],
               report: Report, session: StoreOutcome) -> list[dict[str, Any]]:
    applied = []
    objects = build_app(owner, spec, replicas, adopted, env=session.env, checksum=session.checksum)
    wanted = {(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects}
    for obj in objects:
        name = obj["metadata"]["name"]
        live = (live_deployments.get(name) if obj["kind"] == "Deployment"
                else cluster.get(obj["apiVersion"], obj["kind"], owner.namespace, name))
        found, wrote = apply_changed(cluster, obj, live)
        report.writes += wrote
        applied.append(found)
    if adopted is not None and adopted["spec"].get("replicas") != replicas:
        cluster.scale("apps/v1", "Deployment", owner.namespace, adopted["metadata"]["name"], replicas)
        report.writes += 1
    # A removed pool, a disabled PDB.
    report.writes += remove_owned(cluster, owner, APP, _APP_KINDS, wanted)
    return applied


_APP_KINDS = [("apps/v1", "Deployment"), ("policy/v1", "PodDisruptionBudget")]
# ConfigMaps are added only when no balancer of ours runs: while one does, each is content-named and
# goes once no pod mounts it (retire_configs).
_BALANCER_KINDS = [*_APP_KINDS, ("v1", "Service")]


def _unserved(cluster: Cluster, requires: tuple[Requirement, ...]) -> tuple[set[tuple[str, str]], list[str]]:
    """The (apiVersion, kind) the cluster does not serve as needed, and why, for each required
    one (an optional one is left out without a word)."""
    skipped: set[tuple[str, str]] = set()
    problems: list[str] = []
    for need in requires:
        crd = cluster.crd(need.crd)
        served = _serves(crd, need.api_version)
        channel = ((crd or {}).get("metadata") or {}).get("annotations", {}) or {}
        installed = channel.get("gateway.networking.k8s.io/channel")
        if served and need.channel is not None and installed != need.channel:
            served = False
            why = (f"{need.kind} needs the {need.channel} channel of CRD {need.crd} (installed: "
                   f"{installed or 'unknown channel'})")
        elif crd is None:
            why = f"CRD {need.crd} is not installed, so {need.kind} ({need.api_version}) cannot be created"
        else:
            why = f"CRD {need.crd} does not serve {need.api_version}"
        if not served:
            skipped.add((need.api_version, need.kind))
            if not need.optional:
                problems.append(why)
    return skipped, problems


def _serves(crd: dict[str, Any] | None, api_version: str) -> bool:
    version = api_version.rsplit("/", 1)[-1]
    return crd is not None and any(v.get("name") == version and v.get("served")
                                   for v in (crd.get("spec") or {}).get("versions") or [])


def _apply_balancer(cluster: Cluster, owner: Owner, spec: ScalableServiceSpec, objects: list[dict[str, Any]],
                    report: Report, cleanup: bool) -> list[dict[str, Any]]:
    """The provider's objects, applied where they differ; the cookie key Secret created once (and
    kept until the ScalableService goes: the operator may create Secrets, never list or delete
    them); on a new generation, the objects of a provider no longer in use removed."""
    if haproxy.needs_cookie_key(spec):
        name = haproxy.cookie_secret_name(owner)
        found = cluster.get("v1", "Secret", owner.namespace, name)
        check_owner(owner.uid, "Secret", name, found)
        if found is None:
            # Created once, never rewritten: a new key would log every sticky user out of their replica.
            cluster.create(haproxy.cookie_secret(owner, secrets.token_hex(32)))
            report.writes += 1
            check_owner(owner.uid, "Secret", name, cluster.get("v1", "Secret", owner.namespace, name))
    current = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    applied = []
    for obj in objects:
        found, wrote = apply_changed(cluster, obj, cluster.get(obj["apiVersion"], obj["kind"], owner.namespace,
                                                               obj["metadata"]["name"]))
        report.writes += wrote
        applied.append(found)
    if cleanup:
        wanted = {(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects}
        # Only versions the CRD serves: listing another fails (Istio before 1.22 serves no v1).
        kinds = _BALANCER_KINDS + [(r.api_version, r.kind) for r in balancing.every_requirement()
                                   if _serves(cluster.crd(r.crd), r.api_version)]
        if not current:  # no balancer of ours runs any more: its configs go with it
            kinds.append(("v1", "ConfigMap"))
        report.writes += remove_owned(cluster, owner, haproxy.COMPONENT, kinds, wanted)
    if current:
        report.writes += retire_configs(cluster, owner, haproxy.COMPONENT, (haproxy.COMPONENT,), current)
    return applied


def _balancer_ready(spec: ScalableServiceSpec, plan: Plan, unserved: list[str],
                    applied: list[dict[str, Any]]) -> tuple[bool, str, str]:
    """BalancerReady: the APIs a provider needs, then the balancer's own readiness, then what
    of the spec it cannot honour."""
    if unserved:
        return False, "APINotInstalled", (
            f"balancing.provider {spec.balancing.provider}: " + "; ".join(unserved)
            + ". The app's other objects are reconciled.")
    ready, why = balancing.readiness(spec, applied)
    if not ready:
        return False, "BalancerNotReady", why
    verdict = plan.verdict
    return True, verdict.reason, verdict.message
