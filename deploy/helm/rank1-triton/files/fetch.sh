#!/bin/sh
# Init container: copy the Triton model repository from $MODEL_REPOSITORY_URI into $MODEL_CACHE_DIR/repository
# (the server mounts that folder read-only). Runs in the rclone image: rclone for s3:// and gs://,
# rclone copyurl + tar for an http(s):// .tar.gz. Credentials come from the environment or workload identity.
# $REQUIRED_MODELS: models whose config.pbtxt must be present afterwards.
set -eu

dest="$MODEL_CACHE_DIR/repository"
marker="$MODEL_CACHE_DIR/fetched-from"

# A persistent cache (StatefulSet) that already holds a complete copy of this URI is reused.
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$MODEL_REPOSITORY_URI" ]; then
  echo "model repository already fetched from $MODEL_REPOSITORY_URI"
  exit 0
fi
# Otherwise start clean: the cache may hold another version or an interrupted copy.
rm -rf "$dest" "$marker"
mkdir -p "$dest"

export RCLONE_S3_PROVIDER="${RCLONE_S3_PROVIDER:-AWS}"
export RCLONE_S3_ENV_AUTH="${RCLONE_S3_ENV_AUTH:-true}"
export RCLONE_GCS_ENV_AUTH="${RCLONE_GCS_ENV_AUTH:-true}"

case "$MODEL_REPOSITORY_URI" in
  s3://*) rclone copy ":s3:${MODEL_REPOSITORY_URI#s3://}" "$dest" ;;
  gs://*) rclone copy ":gcs:${MODEL_REPOSITORY_URI#gs://}" "$dest" ;;
  http://*.tar.gz | https://*.tar.gz)
    rclone copyurl "$MODEL_REPOSITORY_URI" "$MODEL_CACHE_DIR/repository.tar.gz"
    tar -xzf "$MODEL_CACHE_DIR/repository.tar.gz" -C "$dest"
    rm "$MODEL_CACHE_DIR/repository.tar.gz"
    ;;
  *)
    echo "unsupported model repository URI: '$MODEL_REPOSITORY_URI' (s3://, gs:// or http(s)://....tar.gz)" >&2
    exit 1
    ;;
esac

# Fail here, with a clear message, rather than in Triton after the pod was scheduled on a GPU.
for model in $REQUIRED_MODELS; do
  if [ ! -f "$dest/$model/config.pbtxt" ]; then
    echo "fetched repository lacks $model/config.pbtxt (is the URI the repository's root?)" >&2
    exit 1
  fi
done
echo "$MODEL_REPOSITORY_URI" > "$marker"
echo "model repository fetched from $MODEL_REPOSITORY_URI"
