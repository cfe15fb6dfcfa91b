{{/* The release's resource names. */}}
{{- define "profleet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "profleet.controller" -}}{{ include "profleet.fullname" . | trunc 52 | trimSuffix "-" }}-controller{{- end -}}
{{- define "profleet.agent" -}}{{ include "profleet.fullname" . | trunc 57 | trimSuffix "-" }}-agent{{- end -}}

{{/* Labels every object carries. */}}
{{- define "profleet.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "profleet.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* An image reference from {repository, tag, digest}; the tag defaults to appVersion. */}}
{{- define "profleet.image" -}}
{{- $img := index . 0 -}}{{- $root := index . 1 -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{/* The PodDisruptionBudget API the cluster serves. */}}
{{- define "profleet.pdbApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "policy/v1" -}}policy/v1{{- else -}}policy/v1beta1{{- end -}}
{{- end -}}

{{/* The controller's in-cluster address for the agents. */}}
{{- define "profleet.controllerURL" -}}
{{- $scheme := ternary "wss" "ws" .Values.controller.tls.enabled -}}
{{- printf "%s://%s.%s.svc:%d" $scheme (include "profleet.controller" .) .Release.Namespace (int .Values.controller.service.websocketPort) -}}
{{- end -}}

{{/* The Secret holding the controller's certificate, its key and the CA's. */}}
{{- define "profleet.tlsSecret" -}}
{{- default (printf "%s-tls" (include "profleet.controller" .)) .Values.controller.tls.secretName -}}
{{- end -}}

{{/* "true" when the chart's certificate comes from cert-manager. */}}
{{- define "profleet.certManager" -}}
{{- $cm := toString .Values.controller.tls.certManager -}}
{{- if not (has $cm (list "auto" "true" "false")) -}}
{{- fail (printf "controller.tls.certManager: %s: want auto, true or false" $cm) -}}
{{- end -}}
{{- if eq $cm "auto" -}}
{{- /* sticky: a Secret this chart generated at install stays in use after
cert-manager is installed (a new CA would cut off the running agents) */ -}}
{{- $old := lookup "v1" "Secret" .Release.Namespace (include "profleet.tlsSecret" .) -}}
{{- if and $old $old.metadata $old.metadata.annotations (index $old.metadata.annotations "profleet.dev/generated") -}}
false
{{- else -}}
{{- .Capabilities.APIVersions.Has "cert-manager.io/v1" -}}
{{- end -}}
{{- else -}}
{{- $cm -}}
{{- end -}}
{{- end -}}
