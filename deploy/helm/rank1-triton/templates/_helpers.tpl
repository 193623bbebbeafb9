{{- define "rank1-triton.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rank1-triton.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "rank1-triton.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "rank1-triton.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "rank1-triton.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rank1-triton.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rank1-triton.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "rank1-triton.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Pods of the server carry this on top of the selector labels; the helm test pod does not. */}}
{{- define "rank1-triton.serverSelectorLabels" -}}
{{ include "rank1-triton.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "rank1-triton.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rank1-triton.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "rank1-triton.headlessName" -}}
{{- printf "%s-headless" (include "rank1-triton.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rank1-triton.headlessEnabled" -}}
{{- if or .Values.service.headless.enabled (eq .Values.workload.kind "StatefulSet") }}true{{ end }}
{{- end }}

{{/* Checks that values.schema.json cannot express, because they relate several values. */}}
{{- define "rank1-triton.validate" -}}
{{- $v := .Values }}
{{- $budget := add $v.preStopSleepSeconds $v.server.exitTimeoutSeconds }}
{{- if le (int $v.terminationGracePeriodSeconds) (int $budget) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + server.exitTimeoutSeconds (%d): Triton 2.51 does not drain gRPC on SIGTERM, so the kubelet's SIGKILL must not cut in-flight requests short" (int $v.terminationGracePeriodSeconds) (int $budget)) }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- end }}

{{/* Flags of the tritonserver that serves clients (rank 0 under MPI). */}}
{{- define "rank1-triton.serverFlags" -}}
{{- $s := .Values.server -}}
- --model-repository={{ .Values.modelRepository.mountPath }}
- --http-port={{ $s.ports.http }}
- --grpc-port={{ $s.ports.grpc }}
- --metrics-port={{ $s.ports.metrics }}
- --exit-timeout-secs={{ $s.exitTimeoutSeconds }}
- --grpc-max-connection-age={{ mul $s.grpcMaxConnectionAgeSeconds 1000 }}
- --grpc-max-connection-age-grace={{ mul $s.grpcMaxConnectionAgeGraceSeconds 1000 }}
{{- if .Values.tls.enabled }}
- --grpc-use-ssl=true
- --grpc-server-cert=/etc/rank1-triton/tls/tls.crt
- --grpc-server-key=/etc/rank1-triton/tls/tls.key
{{- if .Values.tls.mutual }}
- --grpc-use-ssl-mutual=true
- --grpc-root-cert=/etc/rank1-triton/tls/ca.crt
{{- end }}
{{- end }}
{{- if .Values.auth.enabled }}
{{- /* Flag syntax checked against tritonserver 2.51: <groups>:<key>=<value>. $(RANK1_API_KEY) is expanded by the kubelet from the env var. */}}
{{- $restriction := printf "%s:%s=$(RANK1_API_KEY)" (join "," .Values.auth.protocols) .Values.auth.headerKey }}
- {{ printf "--grpc-restricted-protocol=%s" $restriction | quote }}
- {{ printf "--http-restricted-api=%s" $restriction | quote }}
{{- end }}
{{- range $s.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Container command + args. TP = 1: tritonserver itself is PID 1 and gets SIGTERM.
TP > 1: one tritonserver per rank under mpirun, laid out like NVIDIA's launch_triton_server.py (ranks > 0
load only the engine model and block inside it as MPI workers; their endpoints are off). The launcher itself
is not used: it starts mpirun in the background and exits (PID 1 would exit, and the pod with it), and it
cannot pass the TLS, auth and connection-age flags.
*/}}
{{- define "rank1-triton.commandAndArgs" -}}
{{- $tp := int .Values.engine.tensorParallelSize -}}
{{- if eq $tp 1 -}}
command: [{{ .Values.server.executable | quote }}]
args:
{{- include "rank1-triton.serverFlags" . | nindent 2 }}
{{- else -}}
command: [{{ .Values.engine.mpirun | quote }}]
args:
  # Open MPI binds each of 2 ranks to a single core by default, which would starve Triton's threads and the
  # Python backend stubs (and collide with other pods on the node).
  - --bind-to
  - none
  - -n
  - "1"
  - {{ .Values.server.executable | quote }}
{{- include "rank1-triton.serverFlags" . | nindent 2 }}
{{- range $rank := untilStep 1 $tp 1 }}
  - ":"
  - -n
  - "1"
  - {{ $.Values.server.executable | quote }}
  - --id=mpi-rank-{{ $rank }}
  - --model-repository={{ $.Values.modelRepository.mountPath }}
  - --model-control-mode=explicit
  - --load-model={{ $.Values.engine.modelName }}
  - --disable-auto-complete-config
  - --allow-http=false
  - --allow-grpc=false
  - --allow-metrics=false
{{- end }}
{{- end }}
{{- end }}
