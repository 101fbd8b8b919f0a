{{- define "platform.labels" -}}
app.kubernetes.io/part-of: data-platform
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
platform/environment: {{ .Values.environment | quote }}
{{- end -}}
