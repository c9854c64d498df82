#!/bin/sh
# `meshgrad coordinator "$@"` for containers, installed in the image as
# /usr/local/bin/meshgrad-coordinator (run it under tini). Compose and Kubernetes set
# MESHGRAD_RESUME=auto, so a restarted container continues its run from the checkpoint volume
# (the CLI resumes exactly when $MESHGRAD_CHECKPOINT_DIR holds a checkpoint). This script adds one
# rule the CLI cannot know: once the run's summary ($MESHGRAD_SUMMARY_JSON) says it finished (not
# interrupted), a restart does nothing and exits 0, instead of re-evaluating the finished run.
set -eu
node_bin="${MESHGRAD_NODE:-node}"
summary="${MESHGRAD_SUMMARY_JSON:-}"
if [ -n "$summary" ] && [ -f "$summary" ] &&
  "$node_bin" -e 'process.exit(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).interrupted === false ? 0 : 1)' "$summary" 2>/dev/null; then
  echo "meshgrad-coordinator: the run already finished ($summary); remove the checkpoint volume to start a new one" >&2
  exit 0
fi
exec "$node_bin" "${MESHGRAD_HOME:-/app}/bin/meshgrad.js" coordinator "$@"
