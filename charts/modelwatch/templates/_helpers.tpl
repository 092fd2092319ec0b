{{/* The namespace of the operator's objects. */}}
{{- define "modelwatch.namespace" -}}
{{- .Values.namespace.name | default .Release.Namespace -}}
{{- end -}}

{{/* The labels every modelwatch object carries. */}}
{{- define "modelwatch.labels" -}}
app.kubernetes.io/name: modelwatch-operator
app.kubernetes.io/part-of: modelwatch
{{- end -}}

{{/* The Prometheus Operator objects' labels, with monitoring.labels. */}}
{{- define "modelwatch.monitoringLabels" -}}
{{ include "modelwatch.labels" . }}
{{- with .Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
