#!/usr/bin/env bash
# npm run soak [-- --seconds N]: builds, brings up (or reuses) the e2e environment, then runs the soak against it.
# Loopback only; it stops by itself and stops every process it started.
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
exec node dist/bench/soak.js "$@"
