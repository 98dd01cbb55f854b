{{- define "drainfx-service.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "drainfx-service.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "drainfx-service.labels" -}}
{{ include "drainfx-service.selector" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{/* terminationGracePeriodSeconds: the service's grace period counts from
the drain's start, which a preStop sleep delays. */}}
{{- define "drainfx-service.terminationGracePeriodSeconds" -}}
{{- $grace := int .Values.shutdown.gracePeriodSeconds -}}
{{- if eq .Values.preStop.mode "sleep" -}}
{{- $grace = add $grace (int .Values.preStop.sleepSeconds) -}}
{{- end -}}
{{- $grace -}}
{{- end -}}
