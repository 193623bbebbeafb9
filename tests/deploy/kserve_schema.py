"""JSON schemas of the two KServe objects in deploy/kserve/, written from KServe's API types (kserve/kserve):

- ServingRuntime (serving.kserve.io/v1alpha1): pkg/apis/serving/v1alpha1/servingruntime_types.go, types
  ServingRuntimeSpec, ServingRuntimePodSpec (inlined), SupportedModelFormat, StorageHelper, BuiltInAdapter.
- InferenceService (serving.kserve.io/v1beta1): pkg/apis/serving/v1beta1/inference_service.go
  (InferenceServiceSpec), predictor.go (PredictorSpec, PredictorExtensionSpec), predictor_model.go (ModelSpec,
  ModelFormat), component.go (ComponentExtensionSpec), podspec.go (PodSpec, a copy of corev1.PodSpec).
- Protocol names: pkg/constants/constants.go (ProtocolV1, ProtocolV2, ProtocolGRPCV1, ProtocolGRPCV2).

They pin the field names and their nesting (additionalProperties: false), which is what kubectl would only find
out on a cluster with KServe's CRDs. Fields of Kubernetes types (containers, volumes, tolerations, the inlined
corev1.Container of a model) are left open here; the test validates them with kubernetes-validate instead.
"""

PROTOCOLS = ["v1", "v2", "grpc-v1", "grpc-v2"]
OBJECT_META = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 1}}}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

# ServingRuntimePodSpec: the pod-level fields a runtime may set.
SERVING_RUNTIME_POD_FIELDS = {
    "containers": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["name"]}},
    "volumes": {"type": "array"},
    "nodeSelector": STRING_MAP,
    "affinity": {"type": "object"},
    "tolerations": {"type": "array"},
    "labels": STRING_MAP,
    "annotations": STRING_MAP,
    "imagePullSecrets": {"type": "array", "items": {"type": "object", "required": ["name"]}},
    "hostIPC": {"type": "boolean"},
}

SERVING_RUNTIME = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "serving.kserve.io/v1alpha1"},
        "kind": {"const": "ServingRuntime"},
        "metadata": OBJECT_META,
        "spec": {
            "type": "object",
            "required": ["containers"],
            "additionalProperties": False,
            "properties": {
                "supportedModelFormats": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "version": {"type": "string"},
                            "autoSelect": {"type": "boolean"},
                            "priority": {"type": "integer", "minimum": 1},
                        },
                    },
                },
                "multiModel": {"type": "boolean"},
                "disabled": {"type": "boolean"},
                "protocolVersions": {"type": "array", "items": {"enum": PROTOCOLS}},
                "workerSpec": {"type": "object"},
                **SERVING_RUNTIME_POD_FIELDS,
                # ModelMesh only.
                "grpcEndpoint": {"type": "string"},
                "grpcDataEndpoint": {"type": "string"},
                "httpDataEndpoint": {"type": "string"},
                "replicas": {"type": "integer", "minimum": 0},
                "storageHelper": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"disabled": {"type": "boolean"}},
                },
                "builtInAdapter": {"type": "object"},
            },
        },
    },
}

# corev1.Container fields, inlined into ModelSpec through PredictorExtensionSpec (checked by kubernetes-validate).
CONTAINER_FIELDS = [
    "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources", "resizePolicy",
    "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe",
    "lifecycle", "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext",
    "stdin", "stdinOnce", "tty",
]  # fmt: skip
MODEL_SPEC = {
    "type": "object",
    "required": ["modelFormat"],
    "additionalProperties": False,
    "properties": {
        "modelFormat": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string", "minLength": 1}, "version": {"type": "string"}},
        },
        "runtime": {"type": "string", "minLength": 1},
        # PredictorExtensionSpec
        "storageUri": {"type": "string", "minLength": 1},
        "runtimeVersion": {"type": "string"},
        "protocolVersion": {"enum": PROTOCOLS},
        "storage": {"type": "object"},
        **{field: {} for field in CONTAINER_FIELDS},
    },
}
# ComponentExtensionSpec
COMPONENT_EXTENSION_FIELDS = {
    "minReplicas": {"type": "integer", "minimum": 0},
    "maxReplicas": {"type": "integer", "minimum": 0},
    "scaleTarget": {"type": "integer"},
    "scaleMetric": {"enum": ["cpu", "memory", "concurrency", "rps"]},
    "containerConcurrency": {"type": "integer", "minimum": 0},
    "timeout": {"type": "integer"},
    "canaryTrafficPercent": {"type": "integer", "minimum": 0, "maximum": 100},
    "logger": {"type": "object"},
    "batcher": {"type": "object"},
    "labels": STRING_MAP,
    "annotations": STRING_MAP,
    "deploymentStrategy": {"type": "object"},
}
# PodSpec (v1beta1's copy of corev1.PodSpec, containers optional): checked by kubernetes-validate as a Pod's spec.
POD_SPEC_FIELDS = [
    "volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy",
    "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "nodeSelector", "serviceAccountName",
    "serviceAccount", "automountServiceAccountToken", "nodeName", "hostNetwork", "hostPID", "hostIPC",
    "shareProcessNamespace", "securityContext", "imagePullSecrets", "hostname", "subdomain", "affinity",
    "schedulerName", "tolerations", "hostAliases", "priorityClassName", "priority", "dnsConfig", "readinessGates",
    "runtimeClassName", "enableServiceLinks", "preemptionPolicy", "overhead", "topologySpreadConstraints",
    "setHostnameAsFQDN", "os", "hostUsers", "schedulingGates", "resourceClaims",
]  # fmt: skip
PREDICTOR_FRAMEWORKS = [
    "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface", "pmml", "lightgbm", "paddle",
]  # fmt: skip
PREDICTOR_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **{framework: {"type": "object"} for framework in PREDICTOR_FRAMEWORKS},
        "model": MODEL_SPEC,
        "storageUris": {"type": "array", "minItems": 1},
        "workerSpec": {"type": "object"},
        **{field: {} for field in POD_SPEC_FIELDS},
        **COMPONENT_EXTENSION_FIELDS,
    },
}

INFERENCE_SERVICE = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "serving.kserve.io/v1beta1"},
        "kind": {"const": "InferenceService"},
        "metadata": OBJECT_META,
        "spec": {
            "type": "object",
            "required": ["predictor"],
            "additionalProperties": False,
            "properties": {
                "predictor": PREDICTOR_SPEC,
                "explainer": {"type": "object"},
                "transformer": {"type": "object"},
            },
        },
    },
}
