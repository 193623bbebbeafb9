#!/bin/sh
# Init container: download a build output folder (build.json, engine/, tokenizer/, repository/) from
# $MODEL_REPOSITORY_URI into $MODEL_CACHE_DIR, which the server then mounts read-only at $MODEL_MOUNT_PATH.
# Runs in the rclone image (busybox sh, sed, tr): rclone for s3:// and gs://, rclone copyurl + tar for an
# http(s):// .tar.gz of the folder's contents. Credentials come from the environment or workload identity.
# Afterwards it checks the layout Triton will need, so that a wrong upload fails here, before a GPU waits:
#   repository/$ENTRY_MODEL/config.pbtxt and repository/$ENGINE_MODEL/config.pbtxt exist, and the absolute
#   paths in their parameters (tokenizer_dir; gpt_model_path or model_dir) lie under $MODEL_MOUNT_PATH and exist.
set -eu

cache="$MODEL_CACHE_DIR"
mount="${MODEL_MOUNT_PATH%/}"
marker="$cache/.rank1-fetched-from"

# A persistent cache (StatefulSet) that already holds a complete copy of this URI is reused.
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$MODEL_REPOSITORY_URI" ]; then
  echo "build output already fetched from $MODEL_REPOSITORY_URI"
  exit 0
fi
# Otherwise start clean: the cache may hold another build or an interrupted copy. A volume's lost+found stays.
for entry in "$cache"/* "$cache"/.[!.]* "$cache"/..?*; do
  if [ -e "$entry" ] && [ "${entry##*/}" != lost+found ]; then
    rm -rf "$entry"
  fi
done

export RCLONE_S3_PROVIDER="${RCLONE_S3_PROVIDER:-AWS}"
export RCLONE_S3_ENV_AUTH="${RCLONE_S3_ENV_AUTH:-true}"
export RCLONE_GCS_ENV_AUTH="${RCLONE_GCS_ENV_AUTH:-true}"

# Download into a folder of our own, then move its entries up: the volume's root belongs to root, so copying
# into it directly could fail on setting the root's own times or mode.
staging="$cache/.rank1-download"
mkdir "$staging"
case "$MODEL_REPOSITORY_URI" in
  s3://*) rclone copy ":s3:${MODEL_REPOSITORY_URI#s3://}" "$staging" ;;
  gs://*) rclone copy ":gcs:${MODEL_REPOSITORY_URI#gs://}" "$staging" ;;
  http://*.tar.gz | https://*.tar.gz)
    archive="$cache/.rank1-download.tar.gz"
    rclone copyurl "$MODEL_REPOSITORY_URI" "$archive"
    tar -xzf "$archive" -C "$staging"
    rm "$archive"
    ;;
  *)
    echo "unsupported model repository URI: '$MODEL_REPOSITORY_URI' (s3://, gs:// or http(s)://....tar.gz)" >&2
    exit 1
    ;;
esac
for entry in "$staging"/* "$staging"/.[!.]* "$staging"/..?*; do
  if [ -e "$entry" ]; then
    mv "$entry" "$cache/"
  fi
done
rmdir "$staging"

fail() {
  echo "fetch: $*" >&2
  exit 1
}

# config_param FILE KEY: the string_value of parameter KEY in a config.pbtxt, empty when absent. Handles the
# one-line form `parameters: { key: "K", value: { string_value: "V" } }`, NVIDIA's multi-line form, single
# quotes, and `value` before `key`.
config_param() {
  tr '\n\r\t' '   ' < "$1" | sed -n -E \
    -e "s/.*key[[:space:]]*:[[:space:]]*[\"']$2[\"'][[:space:],;]*value[[:space:]]*:?[[:space:]]*\\{[[:space:]]*string_value[[:space:]]*:[[:space:]]*[\"']([^\"']*)[\"'].*/\\1/p" \
    -e "t" \
    -e "s/.*value[[:space:]]*:?[[:space:]]*\\{[[:space:]]*string_value[[:space:]]*:[[:space:]]*[\"']([^\"']*)[\"'][[:space:]]*\\}[[:space:],;]*key[[:space:]]*:[[:space:]]*[\"']$2[\"'].*/\\1/p"
}

# The serve root the build recorded in build.json, for the error messages.
serve_root=""
if [ -f "$cache/build.json" ]; then
  serve_root=$(tr '\n\r\t' '   ' < "$cache/build.json" |
    sed -n -E 's/.*"serve_root"[[:space:]]*:[[:space:]]*"([^"]*)".*/\1/p')
fi
built_for() {
  if [ -n "$serve_root" ]; then echo " (build.json: serve_root $serve_root)"; fi
}

# check_path CONFIG KEY: parameter KEY of CONFIG names an existing path under the mount.
check_path() {
  value=$(config_param "$cache/$1" "$2")
  if [ -z "$value" ]; then
    fail "$1 has no $2 parameter (a string_value holding an absolute path under $mount)"
  fi
  case "$value" in
    "$mount" | "$mount"/*) ;;
    *)
      fail "parameter $2 in $1 is '$value', which is not under modelRepository.mountPath $mount$(built_for):" \
        "the build was run with a different --serve-root than modelRepository.mountPath." \
        "Rebuild with --serve-root $mount, or set modelRepository.mountPath to the build's serve root."
      ;;
  esac
  local_path="$cache${value#"$mount"}"
  if [ ! -e "$local_path" ]; then
    fail "parameter $2 in $1 names $value, but the download has no ${value#"$mount"/} ($local_path):" \
      "upload the whole build output folder (build.json, engine/, tokenizer/, repository/), not only repository/;" \
      "or the build was run with a different --serve-root than modelRepository.mountPath$(built_for)."
  fi
}

entry="repository/$ENTRY_MODEL/config.pbtxt"
engine="repository/$ENGINE_MODEL/config.pbtxt"
for config in "$entry" "$engine"; do
  if [ ! -f "$cache/$config" ]; then
    fail "the download lacks $config: is the URI the build output folder (the one holding build.json and repository/)?"
  fi
done
check_path "$entry" tokenizer_dir
if [ -n "$(config_param "$cache/$engine" gpt_model_path)" ]; then
  check_path "$engine" gpt_model_path
elif [ -n "$(config_param "$cache/$engine" model_dir)" ]; then
  check_path "$engine" model_dir
else
  fail "$engine has neither a gpt_model_path (TensorRT-LLM engine) nor a model_dir (CPU engine) parameter"
fi

echo "$MODEL_REPOSITORY_URI" > "$marker"
echo "build output fetched from $MODEL_REPOSITORY_URI into $cache (served at $mount)"
