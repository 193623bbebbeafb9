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

{{/*
Whether monitoring.coreos.com/v1 objects (ServiceMonitor, PrometheusRule) can be created: the cluster serves the
API (helm template: --api-versions monitoring.coreos.com/v1), or monitoring.assumeCRDs says so.
*/}}
{{- define "rank1-triton.monitoringAPI" -}}
{{- if or .Values.monitoring.assumeCRDs (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}true{{ end }}
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
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + server.exitTimeoutSeconds (%d): Triton 2.69 spends up to the exit timeout draining HTTP, gRPC and in-flight inferences after SIGTERM, so the kubelet's SIGKILL must not come sooner" (int $v.terminationGracePeriodSeconds) (int $budget)) }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- if eq $v.modelRepository.source "pvc" }}
{{- $mode := $v.modelRepository.pvc.accessMode | default "ReadOnlyMany" }}
{{- $pods := include "rank1-triton.maxPods" . | int }}
{{- if and (has $mode (list "ReadWriteOnce" "ReadWriteOncePod")) (gt $pods 1) }}
{{- fail (printf "modelRepository.pvc.accessMode is %s, but up to %d server pods share the claim %q (replicaCount or autoscaling.maxReplicas, plus the pod a rolling update surges): use a ReadOnlyMany or ReadWriteMany claim (and set accessMode to match), or modelRepository.source=fetch (each pod downloads into a volume of its own, kept across restarts with workload.kind=StatefulSet), or run one pod (autoscaling.maxReplicas=1 or replicaCount=1, and workload.strategy.rollingUpdate.maxSurge=0)" $mode $pods $v.modelRepository.pvc.claimName) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Most server pods that can exist at once: the replica count (the HPA's maximum when autoscaling), plus one while
a Deployment's rolling update surges (maxSurge other than 0).
*/}}
{{- define "rank1-triton.maxPods" -}}
{{- $v := .Values }}
{{- $replicas := ternary $v.autoscaling.maxReplicas $v.replicaCount $v.autoscaling.enabled | int }}
{{- $surge := 0 }}
{{- if and (eq $v.workload.kind "Deployment") (eq ($v.workload.strategy.type | default "RollingUpdate") "RollingUpdate") }}
{{- $rolling := $v.workload.strategy.rollingUpdate | default dict }}
{{- $maxSurge := toString (hasKey $rolling "maxSurge" | ternary $rolling.maxSurge "25%") }}
{{- if not (has $maxSurge (list "0" "0%")) }}
{{- $surge = 1 }}
{{- end }}
{{- end }}
{{- add $replicas $surge }}
{{- end }}

{{/*
A Kubernetes quantity (schema pattern: digits, optional decimals, optional Ki/Mi/Gi/Ti/K/M/G/T) in MiB, as a float.
*/}}
{{- define "rank1-triton.mebibytes" -}}
{{- $q := toString . }}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $q }}
{{- $unit := trimPrefix $number $q }}
{{- $perMiB := dict "" 0.00000095367431640625 "Ki" 0.0009765625 "Mi" 1.0 "Gi" 1024.0 "Ti" 1048576.0 "K" 0.00095367431640625 "M" 0.95367431640625 "G" 953.67431640625 "T" 953674.31640625 }}
{{- mulf (float64 $number) (get $perMiB $unit) }}
{{- end }}

{{/*
Resources of the fetch init container: the values, plus ephemeral-storage when they set none. The request is
what the pod keeps on the node's disk: the download (Deployment: an emptyDir; StatefulSet: on its own PVC) and
/tmp. The limit adds 1Gi for logs.
*/}}
{{- define "rank1-triton.fetchResources" -}}
{{- $repo := .Values.modelRepository }}
{{- $resources := deepCopy ($repo.fetch.resources | default dict) }}
{{- $mib := include "rank1-triton.mebibytes" .Values.tmp.sizeLimit | float64 }}
{{- if ne .Values.workload.kind "StatefulSet" }}
{{- $mib = addf $mib (include "rank1-triton.mebibytes" $repo.fetch.size | float64) }}
{{- end }}
{{- $request := printf "%dMi" (ceil $mib | int64) }}
{{- $limit := printf "%dMi" (addf (ceil $mib) 1024 | int64) }}
{{- $requests := $resources.requests | default dict }}
{{- $limits := $resources.limits | default dict }}
{{- /* A value of the user's on either side wins, and the chart adds none on the other (requests <= limits). */}}
{{- if not (or (hasKey $requests "ephemeral-storage") (hasKey $limits "ephemeral-storage")) }}
{{- $_ := set $requests "ephemeral-storage" $request }}
{{- $_ := set $limits "ephemeral-storage" $limit }}
{{- end }}
{{- $_ := set $resources "requests" $requests }}
{{- $_ := set $resources "limits" $limits }}
{{- toYaml $resources }}
{{- end }}

{{/* The Triton model repository inside the mounted build output folder. */}}
{{- define "rank1-triton.repositoryPath" -}}
{{- printf "%s/repository" (trimSuffix "/" .Values.modelRepository.mountPath) }}
{{- end }}

{{/* Whether the chart restricts the model-repository API with its own key (see server.lockModelRepositoryApi). */}}
{{- define "rank1-triton.lockModelRepositoryApi" -}}
{{- if and .Values.server.lockModelRepositoryApi (not (and .Values.auth.enabled (has "model-repository" .Values.auth.protocols))) }}true{{ end }}
{{- end }}

{{/* Flags of the tritonserver that serves clients (rank 0 under MPI). */}}
{{- define "rank1-triton.serverFlags" -}}
{{- $s := .Values.server -}}
- --model-repository={{ include "rank1-triton.repositoryPath" . }}
{{- /* Explicit: the entry model reloads a crashed engine model with pb_utils.load_model; * loads every model at startup. */}}
- --model-control-mode=explicit
- --load-model=*
- --http-port={{ $s.ports.http }}
- --grpc-port={{ $s.ports.grpc }}
- --metrics-port={{ $s.ports.metrics }}
- --exit-timeout-secs={{ $s.exitTimeoutSeconds }}
- --backend-config=python,thread-pool-size={{ int $s.pythonThreadPoolSize }}
- --grpc-max-connection-age={{ mul $s.grpcMaxConnectionAgeSeconds 1000 }}
- --grpc-max-connection-age-grace={{ mul $s.grpcMaxConnectionAgeGraceSeconds 1000 }}
{{- if not (kindIs "invalid" $s.allowClientSharedMemory) }}
- --allow-client-shm={{ $s.allowClientSharedMemory }}
{{- end }}
{{- if not (kindIs "invalid" $s.httpMaxInputSizeBytes) }}
- --http-max-input-size={{ int64 $s.httpMaxInputSizeBytes }}
{{- end }}
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
{{- /* Flag syntax <groups>:<key>=<value> (Triton 2.69 src/command_line_parser.cc; run on 2.51 of nvidia-pytriton by the tests). $(RANK1_API_KEY) is expanded by the kubelet from the env var. */}}
{{- $restriction := printf "%s:%s=$(RANK1_API_KEY)" (join "," .Values.auth.protocols) .Values.auth.headerKey }}
- {{ printf "--grpc-restricted-protocol=%s" $restriction | quote }}
- {{ printf "--http-restricted-api=%s" $restriction | quote }}
{{- end }}
{{- if include "rank1-triton.lockModelRepositoryApi" . }}
{{- /* A group may appear in one restriction only; the auth restriction above does not name model-repository here. */}}
- "--grpc-restricted-protocol=model-repository:rank1-model-control=$(RANK1_MODEL_CONTROL_KEY)"
- "--http-restricted-api=model-repository:rank1-model-control=$(RANK1_MODEL_CONTROL_KEY)"
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
  - --model-repository={{ include "rank1-triton.repositoryPath" $ }}
  - --model-control-mode=explicit
  - --load-model={{ $.Values.engine.modelName }}
  - --disable-auto-complete-config
  - --allow-http=false
  - --allow-grpc=false
  - --allow-metrics=false
{{- end }}
{{- end }}
{{- end }}
