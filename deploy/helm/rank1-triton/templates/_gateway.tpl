{{/*
The HTTP rerank gateway sidecar (gateway/, image built from gateway/Dockerfile): Cohere v1/v2, Jina, TEI and vLLM
rerank requests over HTTP, sent to Triton on localhost over gRPC with the chart's own TLS and API-key settings.
*/}}
{{- define "rank1-triton.gatewayContainer" -}}
{{- $g := .Values.gateway }}
{{- $ports := .Values.server.ports }}
{{- if has (int $g.port) (list (int $ports.http) (int $ports.grpc) (int $ports.metrics)) }}
{{- fail (printf "gateway.port (%d) must differ from Triton's ports (server.ports: %d, %d, %d): both containers share the pod's network" (int $g.port) (int $ports.http) (int $ports.grpc) (int $ports.metrics)) }}
{{- end }}
{{- $repo := .Values.modelRepository }}
- name: gateway
  image: "{{ $g.image.repository }}:{{ $g.image.tag | default .Chart.AppVersion }}"
  imagePullPolicy: {{ $g.image.pullPolicy }}
  args:
    - --host=0.0.0.0
    - --port={{ $g.port }}
    # Triton in the same pod: the gRPC port never leaves localhost on this path.
    - --grpc-url=localhost:{{ .Values.server.ports.grpc }}
    - --timeout={{ $g.timeoutSeconds }}
    - --chunk-size={{ $g.chunkSize }}
    - --max-body-bytes={{ int64 $g.limits.maxBodyBytes }}
    - --max-documents={{ $g.limits.maxDocuments }}
    - --max-text-chars={{ $g.limits.maxTextChars }}
    - --max-concurrent-requests={{ $g.limits.maxConcurrentRequests }}
    {{- if $g.tokenizer }}
    # max_tokens_per_doc cuts passages with the served model's tokenizer from the build output folder.
    - --tokenizer={{ trimSuffix "/" $repo.mountPath }}/tokenizer
    {{- end }}
    {{- if .Values.auth.enabled }}
    - --grpc-api-key-name={{ .Values.auth.headerKey }}
    {{- end }}
    {{- if .Values.tls.enabled }}
    # Triton's certificate must be valid for "localhost" (a subjectAltName), signed by the Secret's ca.crt.
    - --grpc-ssl
    - --grpc-root-certificates=/etc/rank1-triton/tls/ca.crt
    {{- if .Values.tls.mutual }}
    - --grpc-client-certificate=/etc/rank1-triton/tls/tls.crt
    - --grpc-client-key=/etc/rank1-triton/tls/tls.key
    {{- end }}
    {{- end }}
    {{- if $g.auth.existingSecret }}
    - --api-keys-file=/etc/rank1-gateway/keys/{{ $g.auth.secretKey }}
    {{- end }}
    {{- range $g.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  {{- if or .Values.auth.enabled $g.env }}
  env:
    {{- if .Values.auth.enabled }}
    # The gateway's own key for Triton's restricted protocols (callers' keys are separate: gateway.auth).
    - name: RANK1_GATEWAY_GRPC_API_KEY
      valueFrom:
        secretKeyRef:
          name: {{ .Values.auth.existingSecret }}
          key: {{ .Values.auth.secretKey }}
    {{- end }}
    {{- with $g.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  ports:
    - name: gateway
      containerPort: {{ $g.port }}
      protocol: TCP
  # /health answers 503 until Triton and the rank1 model are ready; /health/live only needs the gateway process.
  livenessProbe:
    httpGet:
      path: /health/live
      port: gateway
    {{- toYaml $g.probes.liveness | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /health
      port: gateway
    {{- toYaml $g.probes.readiness | nindent 4 }}
  lifecycle:
    # Same sleep as Triton's: the pod leaves the Service endpoints before the gateway stops accepting.
    preStop:
      exec:
        command: [sleep, {{ .Values.preStopSleepSeconds | quote }}]
  resources:
    {{- toYaml $g.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  {{- if or $g.tokenizer .Values.tls.enabled $g.auth.existingSecret }}
  volumeMounts:
    {{- if $g.tokenizer }}
    - name: model-repository
      mountPath: {{ $repo.mountPath }}
      readOnly: true
      {{- if and (ne $repo.source "fetch") $repo.pvc.subPath }}
      subPath: {{ $repo.pvc.subPath }}
      {{- end }}
    {{- end }}
    {{- if .Values.tls.enabled }}
    - name: tls
      mountPath: /etc/rank1-triton/tls
      readOnly: true
    {{- end }}
    {{- if $g.auth.existingSecret }}
    - name: gateway-keys
      mountPath: /etc/rank1-gateway/keys
      readOnly: true
    {{- end }}
  {{- end }}
{{- end }}
