#!/bin/sh
# `meshgrad coordinator "$@"` for containers, installed in the image as
# /usr/local/bin/meshgrad-coordinator (run it under tini). The CLI's --resume fails when there is
# no checkpoint yet, so this script decides:
#  - the run's summary ($MESHGRAD_SUMMARY_JSON) says it finished (not interrupted): do not run it
#    again (that would overwrite the summary of the finished run); exit 0.
#  - the checkpoint directory ($MESHGRAD_CHECKPOINT_DIR) holds a checkpoint: add --resume, so a
#    restarted container continues its run.
#  - otherwise: start a new run.
set -eu
node_bin="${MESHGRAD_NODE:-node}"
summary="${MESHGRAD_SUMMARY_JSON:-}"
if [ -n "$summary" ] && [ -f "$summary" ] &&
  "$node_bin" -e 'process.exit(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).interrupted === false ? 0 : 1)' "$summary" 2>/dev/null; then
  echo "meshgrad-coordinator: the run already finished ($summary); remove the checkpoint volume to start a new one" >&2
  exit 0
fi
dir="${MESHGRAD_CHECKPOINT_DIR:-}"
if [ -n "$dir" ] && [ -f "$dir/latest.safetensors" ]; then
  echo "meshgrad-coordinator: resuming from $dir/latest.safetensors" >&2
  set -- --resume "$@"
fi
exec "$node_bin" "${MESHGRAD_HOME:-/app}/bin/meshgrad.js" coordinator "$@"
