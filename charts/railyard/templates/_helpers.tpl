{{- define "railyard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "railyard.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "railyard.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "railyard.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "railyard.secretName" -}}
{{ include "railyard.fullname" . }}
{{- end -}}

{{- define "railyard.hasGitSecret" -}}
{{- if or .Values.git.credentials .Values.git.existingCredentialsSecret .Values.git.sshKey .Values.git.sshKnownHosts -}}true{{- end -}}
{{- end -}}

{{/* The exporter's flags, shared by the API (embedded) and the export container. */}}
{{- define "railyard.exportEnv" -}}
- name: RAILYARD_REPO_DIR
  value: /data/repo.git
- name: RAILYARD_GIT_URL
  value: {{ .Values.git.url | quote }}
- name: RAILYARD_BRANCH
  value: {{ .Values.git.branch | quote }}
- name: RAILYARD_FAIL_ON_ERROR_WITH_GIT_PUSH_TAGS
  value: {{ .Values.manifestRepoExport.failOnErrorWithGitPushTags | quote }}
{{- if or .Values.git.credentials .Values.git.existingCredentialsSecret }}
- name: RAILYARD_GIT_CREDENTIALS
  value: /secrets/git/git-credentials
{{- end }}
{{- if .Values.git.username }}
- name: RAILYARD_GIT_USERNAME
  value: {{ .Values.git.username | quote }}
- name: RAILYARD_GIT_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.git.existingCredentialsSecret | default (include "railyard.secretName" .) }}
      key: git-password
{{- end }}
{{- if .Values.git.sshKey }}
- name: RAILYARD_GIT_SSH_KEY
  value: /secrets/git/ssh-key
{{- end }}
{{- if .Values.git.sshKnownHosts }}
- name: RAILYARD_GIT_SSH_KNOWN_HOSTS
  value: /secrets/git/known-hosts
{{- end }}
- name: RAILYARD_LOG_FORMAT
  value: {{ .Values.api.logFormat | quote }}
{{- end -}}
