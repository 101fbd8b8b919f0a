{{- define "platform.labels" -}}
app.kubernetes.io/part-of: data-platform
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
platform/environment: {{ .Values.environment | quote }}
{{- end -}}

{{/* Egress rules the network policies share (templates/network-policies.yaml). */}}
{{- define "platform.externalHttps" -}}
# Egress to HTTPS outside the cluster and the VPC: Google's APIs (the bucket,
# BigQuery, Secret Manager, Cloud Logging) and nothing internal. Tighten to
# private.googleapis.com's range where the cluster's DNS resolves Google's
# APIs there (networkPolicies.externalHttps).
- to:
    - ipBlock:
        cidr: {{ .externalHttps.cidr }}
        except: {{ toJson .externalHttps.except }}
  ports:
    - {protocol: TCP, port: 443}
# The GKE metadata server: Workload Identity's tokens (port 988 on Dataplane V2).
- to:
    {{- range .metadataServerCidrs }}
    - ipBlock: {cidr: {{ . }}}
    {{- end }}
  ports:
    - {protocol: TCP, port: 80}
    - {protocol: TCP, port: 988}
{{- end }}
{{- define "platform.metadataDb" -}}
- to:
    - podSelector:
        matchLabels: {component: pgbouncer, tier: airflow, release: {{ .airflowRelease }}}
  ports:
    - {protocol: TCP, port: 6543}
- to:
    {{- range (required "networkPolicies.metadataDbCidrs (cluster annotation platform/metadata-db-cidr)" .metadataDbCidrs | splitList ",") }}
    - ipBlock: {cidr: {{ trim . }}}
    {{- end }}
  ports:
    - {protocol: TCP, port: 5432}
{{- end }}
