{{/* Pod template shared by the Deployment and the StatefulSet. */}}
{{- define "rank1-triton.podTemplate" -}}
{{- $tp := int .Values.engine.tensorParallelSize }}
{{- $repo := .Values.modelRepository }}
{{- $fetch := eq $repo.source "fetch" -}}
metadata:
  labels:
    {{- include "rank1-triton.labels" . | nindent 4 }}
    app.kubernetes.io/component: server
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if or $fetch .Values.podAnnotations }}
  annotations:
    {{- if $fetch }}
    checksum/fetch-script: {{ include (print $.Template.BasePath "/fetch-script-configmap.yaml") . | sha256sum }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
spec:
  serviceAccountName: {{ include "rank1-triton.serviceAccountName" . }}
  # Triton needs no Kubernetes API access; service links would only add env vars.
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml .Values.topologySpreadConstraints | nindent 4 }}
  {{- else if .Values.defaultTopologySpread }}
  # One server pod per node where possible: a node failure or drain takes out as few replicas as it can.
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "rank1-triton.serverSelectorLabels" . | nindent 10 }}
  {{- end }}
  {{- if $fetch }}
  initContainers:
    - name: fetch-model-repository
      image: {{ $repo.fetch.image }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: [sh, /scripts/fetch.sh]
      env:
        - name: MODEL_REPOSITORY_URI
          value: {{ $repo.fetch.uri | quote }}
        - name: MODEL_CACHE_DIR
          value: /cache
        # Where the server mounts the cache: the prefix of the absolute paths in the fetched model configs.
        - name: MODEL_MOUNT_PATH
          value: {{ $repo.mountPath | quote }}
        - name: ENTRY_MODEL
          value: rank1
        - name: ENGINE_MODEL
          value: {{ .Values.engine.modelName | quote }}
        - name: HOME
          value: /tmp
        {{- with $repo.fetch.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $repo.fetch.envFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      resources:
        {{- include "rank1-triton.fetchResources" . | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: model-repository
          mountPath: /cache
        - name: fetch-script
          mountPath: /scripts
          readOnly: true
        - name: tmp
          mountPath: /tmp
  {{- end }}
  containers:
    - name: triton
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      {{- include "rank1-triton.commandAndArgs" . | nindent 6 }}
      env:
        - name: HOME
          value: /tmp
        {{- if .Values.auth.enabled }}
        - name: RANK1_API_KEY
          valueFrom:
            secretKeyRef:
              name: {{ .Values.auth.existingSecret }}
              key: {{ .Values.auth.secretKey }}
        {{- end }}
        {{- if include "rank1-triton.lockModelRepositoryApi" . }}
        # Key of the model-repository API (server.lockModelRepositoryApi): the pod's UID, new for every pod.
        - name: RANK1_MODEL_CONTROL_KEY
          valueFrom:
            fieldRef:
              fieldPath: metadata.uid
        {{- end }}
        {{- if gt $tp 1 }}
        # Open MPI's shared-memory transport would need CAP_SYS_PTRACE for single-copy; TensorRT-LLM moves
        # tensors with NCCL, MPI only carries control messages.
        - name: OMPI_MCA_btl_vader_single_copy_mechanism
          value: none
        # On SIGTERM mpirun signals the ranks, then SIGKILLs them after this many seconds (Open MPI 4 default: 1).
        # Give rank 0 its exit timeout. Not checked here (no MPI on the validation machine): confirm on the
        # image with `ompi_info --param odls base --level 9`.
        - name: OMPI_MCA_odls_base_sigkill_timeout
          value: {{ .Values.server.exitTimeoutSeconds | quote }}
        {{- end }}
        {{- with .Values.server.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: http
          containerPort: {{ .Values.server.ports.http }}
          protocol: TCP
        - name: grpc
          containerPort: {{ .Values.server.ports.grpc }}
          protocol: TCP
        - name: metrics
          containerPort: {{ .Values.server.ports.metrics }}
          protocol: TCP
      # Health endpoints stay outside auth.protocols, so the kubelet needs no API key.
      startupProbe:
        httpGet:
          path: /v2/health/live
          port: http
        {{- toYaml .Values.probes.startup | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /v2/health/live
          port: http
        {{- toYaml .Values.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /v2/health/ready
          port: http
        {{- toYaml .Values.probes.readiness | nindent 8 }}
      lifecycle:
        # An exec sleep works on every supported Kubernetes (the native sleep action needs 1.30+).
        preStop:
          exec:
            command: [sleep, {{ .Values.preStopSleepSeconds | quote }}]
      resources:
        requests:
          {{- toYaml .Values.resources.requests | nindent 10 }}
        limits:
          {{- toYaml (merge (dict "nvidia.com/gpu" $tp) (deepCopy (.Values.resources.limits | default dict))) | nindent 10 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        # The build output folder (build.json, engine/, tokenizer/, repository/): the fetch cache volume itself,
        # or the claim's subPath.
        - name: model-repository
          mountPath: {{ $repo.mountPath }}
          readOnly: true
          {{- if and (not $fetch) $repo.pvc.subPath }}
          subPath: {{ $repo.pvc.subPath }}
          {{- end }}
        - name: dshm
          mountPath: /dev/shm
        - name: tmp
          mountPath: /tmp
        {{- if .Values.tls.enabled }}
        - name: tls
          mountPath: /etc/rank1-triton/tls
          readOnly: true
        {{- end }}
    {{- if .Values.gateway.enabled }}
    {{- include "rank1-triton.gatewayContainer" . | nindent 4 }}
    {{- end }}
  volumes:
    - name: dshm
      emptyDir:
        medium: Memory
        sizeLimit: {{ .Values.shm.sizeLimit }}
    - name: tmp
      emptyDir:
        sizeLimit: {{ .Values.tmp.sizeLimit }}
    {{- if not $fetch }}
    - name: model-repository
      persistentVolumeClaim:
        claimName: {{ $repo.pvc.claimName }}
        readOnly: true
    {{- else }}
    - name: fetch-script
      configMap:
        name: {{ include "rank1-triton.fullname" . }}-fetch
    {{- if ne .Values.workload.kind "StatefulSet" }}
    - name: model-repository
      emptyDir:
        sizeLimit: {{ $repo.fetch.size }}
    {{- end }}
    {{- end }}
    {{- if .Values.tls.enabled }}
    - name: tls
      secret:
        secretName: {{ .Values.tls.secretName }}
        defaultMode: 0440
    {{- end }}
    {{- if and .Values.gateway.enabled .Values.gateway.auth.existingSecret }}
    - name: gateway-keys
      secret:
        secretName: {{ .Values.gateway.auth.existingSecret }}
        defaultMode: 0440
    {{- end }}
{{- end }}
