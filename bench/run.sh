#!/usr/bin/env bash
# npm run bench [-- --smoke | --only 1,2 | --seconds N --runs N]: builds, brings up (or reuses) the e2e environment,
# then runs the benchmark harness against it. `bench/run.sh soak [--seconds N]` (npm run soak) runs the soak instead.
# Loopback only; every process it starts, it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build --silent
test/e2e/env/up >&2
eval "$(test/e2e/env/env)"
if [ -z "${E2E_KUBECTL:-}" ]; then
  E2E_KUBECTL=$(command -v kubectl.1.32 || true)
  [ -n "$E2E_KUBECTL" ] || [ ! -x /usr/lib/google-cloud-sdk/bin/kubectl.1.32 ] || E2E_KUBECTL=/usr/lib/google-cloud-sdk/bin/kubectl.1.32
  export E2E_KUBECTL="${E2E_KUBECTL:-kubectl}"
fi
entry=run
if [ "${1:-}" = soak ]; then entry=soak; shift; fi
exec node "dist/bench/$entry.js" "$@"
