{{- define "gyre.labels" -}}
app.kubernetes.io/name: gyre
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "gyre.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
