{{- define "ocrgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ocrgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "ocrgate.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "ocrgate.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "ocrgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ocrgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ocrgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ocrgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/part-of: ocrgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ocrgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ocrgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- /* The Secret holding the app secret: the user's, or the chart's own when it has a value. */ -}}
{{- define "ocrgate.secretName" -}}
{{- if .Values.wechat.existingSecret }}
{{- .Values.wechat.existingSecret }}
{{- else if .Values.wechat.appSecret }}
{{- include "ocrgate.fullname" . }}
{{- end }}
{{- end }}

{{- define "ocrgate.image" -}}
{{- $image := printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- if .Values.image.digest }}{{ printf "%s@%s" $image .Values.image.digest }}{{ else }}{{ $image }}{{ end }}
{{- end }}

{{- define "ocrgate.replicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{/*
A quarter of a Kubernetes memory quantity in Mi or Gi, as a size ocrgate reads (e.g. `128 MiB`).
*/}}
{{- define "ocrgate.quarterOf" -}}
{{- $quantity := toString . -}}
{{- $number := regexFind "^[0-9]+" $quantity -}}
{{- $unit := trimPrefix $number $quantity -}}
{{- if eq $unit "Gi" -}}
{{- div (mul (int $number) 1024) 4 }} MiB
{{- else if eq $unit "Mi" -}}
{{- div (int $number) 4 }} MiB
{{- else -}}
{{- fail (printf "cannot size limits.requestMemory from the memory limit %q: give it in Mi or Gi, or set limits.requestMemory" $quantity) -}}
{{- end -}}
{{- end -}}

{{/*
The request memory budget: as set, or a quarter of the container's memory limit.
*/}}
{{- define "ocrgate.requestMemory" -}}
{{- if .Values.limits.requestMemory -}}
{{- .Values.limits.requestMemory -}}
{{- else -}}
{{- include "ocrgate.quarterOf" (required "set resources.limits.memory or limits.requestMemory" .Values.resources.limits.memory) -}}
{{- end -}}
{{- end -}}

{{/*
The Secret holding the gRPC port's certificate: as named, or the one the chart's Certificate fills.
*/}}
{{- define "ocrgate.tlsSecretName" -}}
{{- .Values.tls.secretName | default (printf "%s-tls" (include "ocrgate.fullname" .)) -}}
{{- end -}}
