{{/* Names and shared pieces. The admission objects and the never-judged namespaces are generated
   from the core (_admission.tpl and the admission templates: `make chart`). */}}

{{- define "clusterip-guard.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's objects: "clusterip-guard" for a release of that name, else RELEASE-clusterip-guard. */}}
{{- define "clusterip-guard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "clusterip-guard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "clusterip-guard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "clusterip-guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clusterip-guard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "clusterip-guard.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "clusterip-guard.tlsSecret" -}}{{ include "clusterip-guard.fullname" . }}-tls{{- end -}}
{{- define "clusterip-guard.caSecret" -}}{{ include "clusterip-guard.fullname" . }}-ca{{- end -}}
{{- define "clusterip-guard.bootstrapName" -}}{{ include "clusterip-guard.fullname" . }}-bootstrap{{- end -}}

{{/* The flags the bootstrap Job, the renewal CronJob and the pre-delete Job share. */}}
{{- define "clusterip-guard.bootstrapArgs" -}}
- bootstrap
- --namespace={{ .Release.Namespace }}
- --name={{ include "clusterip-guard.fullname" . }}
- --service-name={{ include "clusterip-guard.fullname" . }}
- --secret-name={{ include "clusterip-guard.tlsSecret" . }}
- --ca-secret-name={{ include "clusterip-guard.caSecret" . }}
{{- end -}}

{{- define "clusterip-guard.registrationArgs" -}}
{{- /* Given, not left to the record: after an upgrade from engine native, the record says native. */ -}}
- --engine={{ .Values.engine }}
- --default-mode={{ .Values.defaultMode }}
- --timeout-seconds={{ .Values.webhook.timeoutSeconds }}
- --failure-policy={{ .Values.webhook.failurePolicy }}
- --audit-failure-policy={{ .Values.webhook.auditFailurePolicy }}
{{- range .Values.webhook.excludedNamespaces }}
- --exclude-namespace={{ . }}
{{- end }}
- --renew-before-days={{ .Values.certificates.bootstrap.renewBeforeDays }}
{{- /* The policy the server reads: Ingresses of its allowed classes cost no call (as the
     chart renders them in cert-manager mode), read at each run, so a renewal takes an edit. */}}
- --policy-file={{ include "clusterip-guard.policyFile" . }}
{{- end -}}

{{- define "clusterip-guard.policyFile" -}}/etc/clusterip-guard/policy/policy.yaml{{- end -}}

{{/* A restricted security context (Pod Security Standards "restricted"). */}}
{{- define "clusterip-guard.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "clusterip-guard.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Impossible combinations fail at render time. */}}
{{- define "clusterip-guard.validate" -}}
{{- if has .Release.Namespace (include "clusterip-guard.systemNamespaces" . | fromJsonArray) -}}
{{- fail (printf "clusterip-guard cannot be installed in %s: that namespace is never judged and holds the cluster's own components; use a namespace of its own, e.g. --namespace clusterip-guard --create-namespace" .Release.Namespace) -}}
{{- end -}}
{{- if has .Release.Namespace .Values.webhook.excludedNamespaces -}}
{{- fail "webhook.excludedNamespaces need not name the release's namespace: it is always excluded" -}}
{{- end -}}
{{- if and (lt (int .Values.replicaCount) 2) (eq .Values.webhook.failurePolicy "Fail") (gt (int .Values.podDisruptionBudget.minAvailable) 0) -}}
{{- fail "replicaCount 1 with a fail-closed webhook and a PodDisruptionBudget would block every node drain; use replicaCount 2 or more" -}}
{{- end -}}
{{- if ge (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicaCount) -}}
{{- fail "podDisruptionBudget.minAvailable must be below replicaCount, or no replica may ever be evicted" -}}
{{- end -}}
{{- end -}}

{{/* Hook annotations of a hook Job and of the RBAC it brings along (dict: hook, weight).
     Hook RBAC exists only while its Job runs: the pre-install Job runs before the chart's other
     objects exist, and the pre-delete Job must work whatever state the release is in. */}}
{{- define "clusterip-guard.hook" -}}
helm.sh/hook: {{ .hook }}
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end -}}
{{- define "clusterip-guard.certificatesHook" -}}
{{ include "clusterip-guard.hook" (dict "hook" "pre-install,pre-upgrade" "weight" .weight) }}
{{- end -}}
{{- define "clusterip-guard.uninstallHook" -}}
{{ include "clusterip-guard.hook" (dict "hook" "pre-delete" "weight" .weight) }}
{{- end -}}

{{/* The Pod of every bootstrap Job: the same image, restricted, with a token to talk to the API. */}}
{{- define "clusterip-guard.bootstrapPod" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "clusterip-guard.selectorLabels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  serviceAccountName: {{ .serviceAccount }}
  automountServiceAccountToken: true
  restartPolicy: Never
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- include "clusterip-guard.podSecurityContext" $root | nindent 4 }}
  containers:
    - name: bootstrap
      image: {{ include "clusterip-guard.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        {{- include "clusterip-guard.bootstrapArgs" $root | nindent 8 }}
        {{- .args | nindent 8 }}
      resources:
        requests:
          cpu: 10m
          memory: 64Mi
        limits:
          cpu: 500m
          memory: 256Mi
      securityContext:
        {{- include "clusterip-guard.containerSecurityContext" $root | nindent 8 }}
      {{- if contains "--policy-file" .args }}
      volumeMounts:
        - name: policy
          mountPath: {{ include "clusterip-guard.policyFile" $root | dir }}
          readOnly: true
      {{- end }}
  {{- if contains "--policy-file" .args }}
  volumes:
    - name: policy
      configMap:
        name: {{ include "clusterip-guard.fullname" $root }}-policy
  {{- end }}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{- define "clusterip-guard.certManagerAnnotations" -}}
cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "clusterip-guard.fullname" . }}-serving
{{- end -}}
