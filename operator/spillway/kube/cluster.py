"""The one place that talks to the API server: get, list, server-side apply with the
`spillway` field manager, the scale subresource, status patches and Events.

Built at startup from a kubeconfig or the in-cluster service account and passed in; nothing
connects at import time. API errors become `ClusterError`, retryable or not.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError, ResourceNotFoundError

from spillway import FIELD_MANAGER, GROUP, KIND, VERSION, __version__
from spillway.ports import ClusterError

log = logging.getLogger(__name__)
MERGE_PATCH = "application/merge-patch+json"
# (connect, read) seconds: a call never waits forever on an API server that stopped answering.
REQUEST_TIMEOUT = (5, 30)
CRD_TTL = 60.0
# Refusals that a retry cannot fix: the request itself is wrong or not allowed.
_FINAL = {400, 403, 404, 405, 415, 422}


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster credentials when present, else the kubeconfig (or $KUBECONFIG)."""
    api_client = client.ApiClient(load_configuration(kubeconfig))
    api_client.user_agent = f"spillway/{__version__}"
    return api_client


def connection(kubeconfig: str | None = None) -> dict[str, Any]:
    """The same credentials, in the terms of `kopf.ConnectionInfo`."""
    configuration = load_configuration(kubeconfig)
    keys = configuration.api_key or {}
    token = keys.get("BearerToken") or keys.get("authorization") or ""
    return {
        "server": configuration.host,
        "ca_path": configuration.ssl_ca_cert,
        "insecure": not configuration.verify_ssl,
        "certificate_path": configuration.cert_file,
        "private_key_path": configuration.key_file,
        "scheme": "Bearer" if token else None,
        "token": token.split(" ", 1)[-1] if token else None,
    }


def load_configuration(kubeconfig: str | None = None) -> client.Configuration:
    configuration = client.Configuration()
    try:
        if kubeconfig:
            raise config.ConfigException("a kubeconfig was given")
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        # The client reads $KUBECONFIG once, at import; read it now.
        config.load_kube_config(config_file=kubeconfig or os.environ.get("KUBECONFIG"),
                                client_configuration=configuration)
    return configuration


class KubeCluster:
    """`spillway.ports.Cluster` over the Kubernetes API."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api = dynamic.DynamicClient(api_client)
        self._crds: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def crd(self, name: str) -> dict[str, Any] | None:
        """Cached for CRD_TTL seconds, found or not: a reconcile asking whether a provider's API
        exists costs the API server at most one GET per CRD a minute."""
        now = time.monotonic()
        cached = self._crds.get(name)
        if cached is not None and now - cached[0] < CRD_TTL:
            return cached[1]
        found = self.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", name)
        self._crds[name] = (now, found)
        return found

    def _resource(self, api_version: str, kind: str) -> Any:
        try:
            return self.api.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError as err:
            raise ClusterError(f"the cluster does not serve {kind} in {api_version}", status=404,
                               retryable=False) from err

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = _call(self._resource(api_version, kind).get, name=name,
                                          namespace=namespace or None).to_dict()
            return found
        except NotFoundError:
            return None

    def list(self, api_version: str, kind: str, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        found = _call(self._resource(api_version, kind).get, namespace=namespace, label_selector=selector)
        return [item.to_dict() for item in found.items]

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        resource = self._resource(obj["apiVersion"], obj["kind"])
        applied = _call(resource.server_side_apply, body=obj, name=meta["name"], namespace=meta.get("namespace"),
                        field_manager=FIELD_MANAGER, force_conflicts=True)
        log.info("applied %s %s/%s", obj["kind"], meta.get("namespace"), meta["name"])
        result: dict[str, Any] = applied.to_dict()
        return result

    def create(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        try:
            _call(self._resource(obj["apiVersion"], obj["kind"]).create, body=obj, namespace=meta.get("namespace"),
                  field_manager=FIELD_MANAGER)
            log.info("created %s %s/%s", obj["kind"], meta.get("namespace"), meta["name"])
        except ClusterError as err:
            if err.status != 409:
                raise
            # created meanwhile (409 AlreadyExists): the first one stands

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        try:
            _call(self._resource(api_version, kind).delete, name=name, namespace=namespace,
                  propagation_policy="Background")
            log.info("deleted %s %s/%s", kind, namespace, name)
        except NotFoundError:
            pass

    def scale(self, api_version: str, kind: str, namespace: str, name: str, replicas: int) -> None:
        resource = self._resource(api_version, kind).subresources["scale"]
        try:
            _call(resource.patch, body={"spec": {"replicas": replicas}}, name=name, namespace=namespace,
                  content_type=MERGE_PATCH, field_manager=FIELD_MANAGER)
        except NotFoundError as err:
            raise ClusterError(f"{kind} {namespace}/{name} is gone", status=404, retryable=False) from err
        log.info("scaled %s %s/%s to %d", kind, namespace, name, replicas)

    def label(self, api_version: str, kind: str, namespace: str, name: str, labels: dict[str, str | None]) -> None:
        try:
            _call(self._resource(api_version, kind).patch, body={"metadata": {"labels": labels}}, name=name,
                  namespace=namespace, content_type=MERGE_PATCH, field_manager=FIELD_MANAGER)
        except NotFoundError as err:
            raise ClusterError(f"{kind} {namespace}/{name} is gone", status=404, retryable=True) from err
        log.info("labelled %s %s/%s: %s", kind, namespace, name, labels)

    def patch_status(self, body: dict[str, Any], status: dict[str, Any]) -> None:
        meta = body["metadata"]
        resource = self._resource(f"{GROUP}/{VERSION}", KIND).subresources["status"]
        try:
            _call(resource.patch, body={"status": status}, name=meta["name"], namespace=meta["namespace"],
                  content_type=MERGE_PATCH, field_manager=FIELD_MANAGER)
        except NotFoundError:
            log.info("%s/%s is gone; its status is not written", meta["namespace"], meta["name"])

    def event(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        meta = body["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:12]}", "namespace": meta["namespace"]},
            "eventTime": now,
            "type": type_,
            "reason": reason,
            "note": message[:1024],
            "action": "Reconcile",
            "reportingController": f"{GROUP}/operator",
            "reportingInstance": f"{GROUP}-operator",
            "regarding": {
                "apiVersion": body.get("apiVersion", f"{GROUP}/{VERSION}"), "kind": body.get("kind", KIND),
                "name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
        }
        try:
            _call(self._resource("events.k8s.io/v1", "Event").create, body=event, namespace=meta["namespace"])
        except ClusterError as err:  # an event lost is not worth failing a reconcile for
            log.warning("could not post event %s: %s", reason, err)


def _call(method: Any, **kwargs: Any) -> Any:
    try:
        return method(_request_timeout=REQUEST_TIMEOUT, **kwargs)
    except NotFoundError:
        raise
    except (DynamicApiError, ApiException) as err:
        status = getattr(err, "status", None)
        raise ClusterError(_message(err), status=status, retryable=status not in _FINAL) from err
    except (urllib3.exceptions.HTTPError, OSError) as err:
        raise ClusterError(f"the API server did not answer: {err}", retryable=True) from err


def _message(err: Exception) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, (bytes, str)):
        try:
            return str(json.loads(body).get("message", body))
        except (ValueError, AttributeError):
            pass
    return str(getattr(err, "summary", lambda: err)())
