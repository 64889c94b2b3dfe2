{{- define "spillway.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "spillway.headroomPriorityClass" -}}
{{- default (printf "%s-headroom" (include "spillway.fullname" .)) .Values.headroom.priorityClass.name -}}
{{- end -}}

{{- define "spillway.serviceAccountName" -}}
{{- default (include "spillway.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "spillway.selectorLabels" -}}
app.kubernetes.io/name: spillway
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "spillway.labels" -}}
{{ include "spillway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "spillway.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{/* The rules the operator needs in a namespace it watches (or everywhere). Exactly what
     operator/spillway/kube/cluster.py and kopf call; no wildcards. */}}
{{- define "spillway.namespacedRules" -}}
- apiGroups: [spillway.io]
  resources: [scalableservices]
  verbs: [get, list, watch, patch]
- apiGroups: [spillway.io]
  resources: [scalableservices/status]
  verbs: [get, patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments/scale]
  verbs: [get, patch, update]
# The Service in front of the app, and the HAProxy provider's Services, ConfigMap and PDB;
# listed by Spillway's labels to remove what a provider no longer uses.
- apiGroups: [""]
  resources: [services, configmaps]
  verbs: [get, list, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, create, patch, delete]
# Prometheus credentials and an External session store's URL are read by name; the HAProxy
# provider's cookie key and the session store's generated password are created once; the session
# store's Secrets are patched when their derived content changes. Never list, watch or delete:
# the owner reference removes them with the ScalableService.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, patch]
# The session store: its StatefulSets and NetworkPolicies, listed by Spillway's labels to remove
# what a mode no longer uses.
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, list, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, create, patch, delete]
# The Redis and sentinel pods: their IPs (to ask the sentinels), the primary read by name once the
# sentinels name it (sessions.settle), the role label that makes the write Service follow the
# primary, and a watch on the Redis pods (a recreated primary is ready again without its label).
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, patch]
# What the balancing providers render, each only where its CRD exists.
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, create, patch, delete]
- apiGroups: [gateway.envoyproxy.io]
  resources: [backendtrafficpolicies]
  verbs: [get, list, create, patch, delete]
- apiGroups: [networking.istio.io]
  resources: [destinationrules, virtualservices]
  verbs: [get, list, create, patch, delete]
- apiGroups: [gateway.nginx.org]
  resources: [upstreamsettingspolicies]
  verbs: [get, list, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [podmonitors]
  verbs: [get, list, create, patch, delete]
# Headroom: a CapacityBuffer where the API is served (Cluster Autoscaler, Karpenter); else the
# placeholder Deployment (above). Pods are listed to count the app's Unschedulable replicas.
- apiGroups: [autoscaling.x-k8s.io]
  resources: [capacitybuffers]
  verbs: [get, list, create, patch, delete]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# kopf peering: the operator creates its peering object when missing.
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, create, patch]
{{- end -}}
