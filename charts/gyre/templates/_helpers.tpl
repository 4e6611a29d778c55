{{- define "gyre.labels" -}}
app.kubernetes.io/name: gyre
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- /* The operator image: repository@digest when image.digest is set, else repository:tag, where an empty tag
means the chart's appVersion. */ -}}
{{- define "gyre.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- /* Prefix of cluster-scoped object names: the release name when it contains "gyre" (gyre for the rendered
install), else <release>-gyre, so two releases' cluster-scoped objects never collide. */ -}}
{{- define "gyre.fullname" -}}
{{- if contains "gyre" .Release.Name -}}
{{ .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else -}}
{{ printf "%s-gyre" .Release.Name | trunc 50 | trimSuffix "-" }}
{{- end -}}
{{- end -}}

{{- /* RBAC object names: gyre-operator for a release named gyre. */ -}}
{{- define "gyre.rbacName" -}}
{{ include "gyre.fullname" . }}-operator
{{- end -}}

{{- /* The namespaces a namespaced operator watches (JSON list): operator.watchNamespaces, else its own. */ -}}
{{- define "gyre.watchNamespaces" -}}
{{- if .Values.operator.watchNamespaces -}}
{{ toJson .Values.operator.watchNamespaces }}
{{- else -}}
{{ list .Release.Namespace | toJson }}
{{- end -}}
{{- end -}}
