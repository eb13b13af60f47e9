{{/*
Chart name, truncated to 63 characters (a label value).
*/}}
{{- define "steppo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart>, or the release name when it already contains the chart name.
*/}}
{{- define "steppo.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of cluster-scoped objects (ClusterRole, ClusterRoleBinding): the namespace is part of it, so two
releases of the same name in different namespaces do not collide.
*/}}
{{- define "steppo.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "steppo.fullname" .) }}
{{- end }}

{{- define "steppo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels.
*/}}
{{- define "steppo.labels" -}}
helm.sh/chart: {{ include "steppo.chart" . }}
{{ include "steppo.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: steppo
{{- end }}

{{/*
Selector labels of the operator pods (and of the metrics Service and ServiceMonitor).
*/}}
{{- define "steppo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "steppo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "steppo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "steppo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image: repository@digest, or repository:tag (tag defaults to the chart's appVersion).
*/}}
{{- define "steppo.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Default image of job pods (`steppo operator --image`): jobDefaults.image, else the operator image.
*/}}
{{- define "steppo.jobImage" -}}
{{- default (include "steppo.image" .) .Values.jobDefaults.image }}
{{- end }}

{{/*
Default NATS URL of jobs (`steppo operator --nats`): nats.url (NATS is installed separately, not by this chart).
*/}}
{{- define "steppo.natsUrl" -}}
{{- .Values.nats.url }}
{{- end }}

{{/*
What the operator calls in the namespaces it watches (read operator/kube.ts, informers.ts, events.ts):
  steppojobs              list, watch (informer); delete (runPolicy.ttlSecondsAfterFinished)
  steppojobs/status       patch (writeStatus)
  steppojobs/scale        patch (writeScale: the built-in autoscaler)
  pods                    list, watch; create; delete (restarts, scaling, cleanPodPolicy)
  services, persistentvolumeclaims   list, watch; create
  configmaps              list, watch; create; patch (the job file)
  events                  create
Nothing else: no get (the operator reads its informer caches), no update of a job's spec, no secrets.
*/}}
{{- define "steppo.operatorRules" -}}
- apiGroups: ["steppo.dev"]
  resources: ["steppojobs"]
  verbs: ["list", "watch", "patch", "delete"]
- apiGroups: ["steppo.dev"]
  resources: ["steppojobs/status", "steppojobs/scale"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["services", "persistentvolumeclaims"]
  verbs: ["list", "watch", "create"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
