{{- define "gyre.labels" -}}
app.kubernetes.io/name: gyre
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "gyre.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{- /* RBAC object names: gyre-operator for a release named gyre (the rendered install), else prefixed by the
release, so two releases' ClusterRoles never collide. */ -}}
{{- define "gyre.rbacName" -}}
{{- if contains "gyre" .Release.Name -}}
{{ .Release.Name }}-operator
{{- else -}}
{{ .Release.Name }}-gyre-operator
{{- end -}}
{{- end -}}

{{- /* The namespaces a namespaced operator watches (JSON list): operator.watchNamespaces, else its own. */ -}}
{{- define "gyre.watchNamespaces" -}}
{{- if .Values.operator.watchNamespaces -}}
{{ toJson .Values.operator.watchNamespaces }}
{{- else -}}
{{ list .Values.namespace | toJson }}
{{- end -}}
{{- end -}}
