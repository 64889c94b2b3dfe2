"""An in-memory stand-in for the `Cluster` port: it stores what is applied, adds what an API
server would (uid, resourceVersion, status), and counts every write."""

from __future__ import annotations

import copy
from typing import Any

from spillway.ports import ClusterError
from spillway.resources.meta import relabel

Key = tuple[str, str, str, str]


class FakeCluster:
    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.writes: list[tuple[str, str, str]] = []
        self.events: list[tuple[str, str, str]] = []
        self.statuses: list[dict[str, Any]] = []
        self.refuse: dict[str, ClusterError] = {}
        self.crds: dict[str, dict[str, Any]] = {}
        self._version = 0

    def _key(self, api_version: str, kind: str, namespace: str, name: str) -> Key:
        return (api_version, kind, namespace, name)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get(self._key(api_version, kind, namespace, name))
        return copy.deepcopy(found) if found else None

    def list(self, api_version: str, kind: str, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        group, _, version = api_version.rpartition("/")
        for crd in self.crds.values():  # as KubeCluster: a version its CRD does not serve is not found
            spec = crd.get("spec") or {}
            if (spec.get("group"), (spec.get("names") or {}).get("kind")) == (group, kind) and not any(
                    v["name"] == version and v.get("served") for v in spec.get("versions") or []):
                raise ClusterError(f"the cluster does not serve {kind} in {api_version}", status=404, retryable=False)
        return [copy.deepcopy(o) for (v, k, ns, _), o in self.objects.items()
                if (v, k, ns) == (api_version, kind, namespace)
                and labels.items() <= (o["metadata"].get("labels") or {}).items()]

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] in self.refuse:
            raise self.refuse[obj["kind"]]
        meta = obj["metadata"]
        key = self._key(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        self._version += 1
        stored = copy.deepcopy(obj)
        old = self.objects.get(key)
        stored["metadata"]["uid"] = old["metadata"]["uid"] if old else f"uid-{meta['name']}"
        stored["metadata"]["resourceVersion"] = str(self._version)
        if obj["kind"] == "Deployment":
            stored["spec"].setdefault("strategy", {"type": "RollingUpdate"})  # a server default
            stored["status"] = old.get("status", {}) if old else {}
            # As the API server: a changed spec is a new generation, which status has not observed yet.
            generation = (old or {}).get("metadata", {}).get("generation", 0)
            changed = old is None or {k: v for k, v in old["spec"].items() if k != "replicas"} != {
                k: v for k, v in stored["spec"].items() if k != "replicas"}
            stored["metadata"]["generation"] = generation + 1 if changed else generation
        self.objects[key] = stored
        self.writes.append(("apply", obj["kind"], meta["name"]))
        return copy.deepcopy(stored)

    def create(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if self._key(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"]) not in self.objects:
            self.apply(obj)
            self.writes[-1] = ("create", obj["kind"], meta["name"])

    def crd(self, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.crds.get(name))

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.objects.pop(self._key(api_version, kind, namespace, name), None)
        self.writes.append(("delete", kind, name))

    def scale(self, api_version: str, kind: str, namespace: str, name: str, replicas: int) -> None:
        if "scale" in self.refuse:
            raise self.refuse["scale"]
        self.objects[self._key(api_version, kind, namespace, name)]["spec"]["replicas"] = replicas
        self.writes.append(("scale", kind, name))

    def label(self, api_version: str, kind: str, namespace: str, name: str, labels: dict[str, str | None]) -> None:
        relabel(self.objects[self._key(api_version, kind, namespace, name)], labels)
        self.writes.append(("label", kind, name))

    def patch_status(self, body: dict[str, Any], status: dict[str, Any]) -> None:
        body.setdefault("status", {}).update(copy.deepcopy(status))
        self.statuses.append(copy.deepcopy(status))
        self.writes.append(("status", body["kind"], body["metadata"]["name"]))

    def event(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    def make_ready(self, kind: str, name: str) -> None:
        """What the controller manager and the kubelet would do: every replica up."""
        for (_, k, _, n), obj in self.objects.items():
            if (k, n) == (kind, name):
                count = obj["spec"].get("replicas", 1)
                obj["status"] = {"replicas": count, "readyReplicas": count}
