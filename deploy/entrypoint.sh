#!/bin/sh
# The entry point of weft's image (deploy/Dockerfile). CI runs this same script
# against the test database (test/integration/deploy.entrypoint.test.ts), so
# what the image runs is exercised without Docker.
#
#   entrypoint.sh orchestrator [weft orchestrator options]
#   entrypoint.sh worker [weft worker options]
#   entrypoint.sh migrate                  apply migrations and exit (every weft process also does at start)
#   entrypoint.sh health URL               exit 0 if URL answers 200 (compose health checks; the image has no curl)
#   entrypoint.sh weft ARGS...             any other weft command: token create, run, validate, ...
#
# Settings come from the environment (WEFT_DATABASE_URL, WEFT_MESSAGING, ...:
# docs/operations.md#settings). `exec` makes weft the process the container's
# init (tini) signals, so SIGTERM drains a worker's steps.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
weft="$here/../bin/weft.js"
role="${1:-}"
if [ $# -gt 0 ]; then shift; fi

# Without WEFT_DATABASE_URL weft starts an embedded PostgreSQL of its own: in a
# container that database lives and dies with the container.
needs_database() {
  if [ -z "${WEFT_DATABASE_URL:-}" ]; then
    echo "entrypoint: WEFT_DATABASE_URL is not set; without it weft would start a PostgreSQL inside this container and lose every task with it. Set it to your PostgreSQL, e.g. postgres://weft:PASSWORD@postgres:5432/weft" >&2
    exit 64
  fi
}

case "$role" in
  orchestrator | worker | migrate)
    needs_database
    exec node "$weft" "$role" "$@"
    ;;
  weft) exec node "$weft" "$@" ;;
  health) exec node "$here/health.mjs" "$@" ;;
  *)
    echo "entrypoint: unknown role \"$role\"; use orchestrator, worker, migrate, health URL, or weft ARGS..." >&2
    exit 64
    ;;
esac
