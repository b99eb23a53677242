# shellcheck shell=bash
# Shared functions of the real e2e environment: Keystone, etcd, Kubernetes 1.20 (apiserver, controller manager,
# scheduler, kubelet) and a Docker engine, all on loopback, all state under $ZUN_E2E_DIR. Sourced by up, down,
# env and service. Facts behind the flags: shared/docs/real-env.md.

D="${ZUN_E2E_DIR:-/var/lib/zun-gateway-e2e}"
ENV_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_BIN="$D/cache/k8s-v1.20.2/bin"
LOGS="$D/logs"
RUN="$D/run"
KEYSTONE_PORT=5000
ETCD_PORT=23790
ETCD_PEER_PORT=23800
APISERVER_PORT=6443
APISERVER_WEST_PORT=6444
DOCKER_SOCK="$D/docker/docker.sock"
# dockerd also listens here with TLS and client certificates, as a remote engine is run (tcp://, --tlsverify).
DOCKER_TLS_PORT=23760
REGISTRY_ADDR=127.0.0.1:5001
REGISTRY_USER=zun-e2e
PRIVATE_IMAGE="$REGISTRY_ADDR/secret/app:1"
PY=/usr/bin/python3

log() { printf '%s %s\n' "$(date +%T)" "$*"; }
die() { printf 'e2e env: %s\n' "$*" >&2; exit 1; }

APT_PACKAGES=(python3-keystone uwsgi-core uwsgi-plugin-python3 sqlite3 docker.io busybox-static socat etcd-server
  golang-go golang-github-modern-go-reflect2-dev openssl curl iproute2 util-linux tar
  wrk nginx-light   # for the benchmarks (npm run bench) and their smoke run in the e2e suite
  docker-registry apache2-utils iptables  # the private registry (htpasswd -B), the engine's isolation rules
  docker-compose python3-docker python3-kubernetes chromium)  # clients the e2e specs drive

check_host() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1 || [ ! -f /etc/debian_version ]; then
    echo "e2e env: needs root on Debian/Ubuntu with apt-get: it installs Keystone, etcd, Go, a Docker engine and" >&2
    echo "builds Kubernetes 1.20 from Debian's source package, then runs them on 127.0.0.1." >&2
    exit 2
  fi
}

install_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # docker-registry's postinst would start a system-wide registry on :5000, Keystone's port: no package starts a
  # service during this install (policy-rc.d, Debian's switch for it), unless the machine has its own policy.
  local policy=/usr/sbin/policy-rc.d own_policy="" rc=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1; fi
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >"$LOGS/apt.log" 2>&1 || rc=$?
  [ -z "$own_policy" ] || rm -f "$policy"
  [ "$rc" = 0 ] || { tail -20 "$LOGS/apt.log" >&2; die "apt-get install failed"; }
}

# The clients the specs drive, each run once: an installed package that does not work fails here, not in a spec.
check_clients() {
  local out
  out=$(env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE "$PY" -c 'import docker, kubernetes' 2>&1) ||
    die "$PY cannot import docker and kubernetes (python3-docker, python3-kubernetes): $out"
  out=$(docker-compose version 2>&1) || die "docker-compose does not run: $out"
  out=$(/usr/bin/chromium --version 2>&1) || die "/usr/bin/chromium does not run: $out"
  out=$(htpasswd 2>&1 || true); [[ "$out" == Usage:* ]] || die "htpasswd (apache2-utils) does not run: $out"
  command -v docker-registry >/dev/null 2>&1 || die "docker-registry is not on PATH (Debian package docker-registry)"
  out=$(iptables -S INPUT 2>&1) || die "iptables cannot read the filter table (the engine's isolation rules need it): $out"
}

secret() { head -c 18 /dev/urandom | base64 | tr -d '/+=' ; }

SECRET_NAMES=(KEYSTONE_ADMIN_PASSWORD GATEWAY_PASSWORD ALICE_PASSWORD BOB_PASSWORD CAROL_PASSWORD DAVE_PASSWORD
  K8S_ADMIN_TOKEN K8S_GATEWAY_TOKEN K8S_WEST_ADMIN_TOKEN K8S_WEST_GATEWAY_TOKEN
  REGISTRY_PASSWORD REGISTRY_HTTP_SECRET PRIVATE_IMAGE_MARKER)

# Generates the secrets that are missing (all of them the first time; an environment made before a component existed
# gains that component's secrets) and keeps the others.
ensure_secrets() {
  local name missing=()
  for name in "${SECRET_NAMES[@]}"; do
    grep -q "^$name=" "$D/secrets.env" 2>/dev/null || missing+=("$name")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    umask 077
    {
      if [ -f "$D/secrets.env" ]; then cat "$D/secrets.env"; fi
      for name in "${missing[@]}"; do echo "$name=$(secret)"; done
    } >"$D/secrets.env.tmp"
    mv "$D/secrets.env.tmp" "$D/secrets.env"
    umask 022
  fi
  # shellcheck disable=SC1091
  . "$D/secrets.env"
}

# --- processes ------------------------------------------------------------------------------------------------
# Each component runs detached in its own session (setsid), so it outlives the shell that started it and can be
# stopped as a process group.

pid_of() { local f="$RUN/$1.pid"; [ -f "$f" ] && cat "$f"; }
is_running() { local p; p=$(pid_of "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

start_detached() { # name, command...
  local name=$1; shift
  mkdir -p "$LOGS" "$RUN"
  # fds 8 and 9 are up's and the build's locks: a long-lived child must not hold them.
  setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$RUN/$name.pid"
}

# step LABEL command...: runs one part of `up` and prints one line with how long it took. A failure ends the script
# (set -e); up's EXIT trap then names the step that failed ($CURRENT_STEP).
export CURRENT_STEP=""
now_ms() { echo $(($(date +%s%N) / 1000000)); }
step() {
  local label=$1 t0 ms; shift
  CURRENT_STEP=$label
  t0=$(now_ms)
  "$@"
  ms=$(($(now_ms) - t0))
  printf '%s %-22s ok (%d.%d s)\n' "$(date +%T)" "$label" $((ms / 1000)) $((ms % 1000 / 100))
  CURRENT_STEP=""
}

stop_component() { # name [seconds [seconds before a second TERM]]
  local name=$1 wait=${2:-20} term2=${3:-0} p i
  p=$(pid_of "$name") || return 0
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
    for i in $(seq 1 $((wait * 5))); do
      kill -0 "$p" 2>/dev/null || break
      # Kubernetes components drain on the first TERM (the apiserver waits up to 60 s for its own watches) and
      # exit at once on the second.
      if [ "$term2" != 0 ] && [ "$i" = $((term2 * 5)) ]; then kill -TERM "$p" 2>/dev/null || true; fi
      sleep 0.2
    done
    kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid"
}

wait_for() { # name seconds command...
  local name=$1 seconds=$2; shift 2
  for _ in $(seq 1 $((seconds * 2))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! is_running "$name"; then break; fi
    sleep 0.5
  done
  echo "e2e env: $name did not become healthy; the end of $LOGS/$name.log:" >&2
  tail -30 "$LOGS/$name.log" >&2 || true
  return 1
}

# --- TLS for the gateway ------------------------------------------------------------------------------------------

ensure_tls() {
  local t="$D/tls"
  [ -f "$t/gateway.crt" ] && return 0
  mkdir -p "$t"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=zun-gateway-e2e-ca \
    -keyout "$t/ca.key" -out "$t/ca.crt" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout "$t/gateway.key" -out "$t/gateway.csr" >/dev/null 2>&1
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$t/san.ext"
  openssl x509 -req -in "$t/gateway.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial -days 3650 \
    -extfile "$t/san.ext" -out "$t/gateway.crt" >/dev/null 2>&1
  chmod 600 "$t/ca.key" "$t/gateway.key"
}

# The Docker engine's TCP listener: a server certificate, and the client certificate the gateway presents to it.
ensure_docker_tls() {
  local t="$D/tls" side
  [ -f "$t/docker-client.crt" ] && return 0
  for side in server client; do
    openssl req -newkey rsa:2048 -nodes -subj "/CN=docker-$side" -keyout "$t/docker-$side.key" \
      -out "$t/docker-$side.csr" >/dev/null 2>&1
    if [ "$side" = server ]; then
      printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$t/docker-$side.ext"
    else
      printf 'extendedKeyUsage=clientAuth\n' >"$t/docker-$side.ext"
    fi
    openssl x509 -req -in "$t/docker-$side.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial -days 3650 \
      -extfile "$t/docker-$side.ext" -out "$t/docker-$side.crt.tmp" >/dev/null 2>&1
    chmod 600 "$t/docker-$side.key"
    mv "$t/docker-$side.crt.tmp" "$t/docker-$side.crt"
  done
}

# --- Keystone -----------------------------------------------------------------------------------------------------

keystone_conf() {
  local k="$D/keystone"
  mkdir -p "$k/fernet-keys" "$k/receipt-keys" "$k/credential-keys"
  cat >"$k/keystone.conf" <<CONF
[DEFAULT]
use_stderr = true
[database]
connection = sqlite:///$k/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $k/fernet-keys
[fernet_receipts]
key_repository = $k/receipt-keys
[credential]
key_repository = $k/credential-keys
CONF
}

keystone_healthy() { curl -fsS -m 5 "http://127.0.0.1:$KEYSTONE_PORT/v3" >/dev/null; }

keystone_start() {
  is_running keystone && keystone_healthy && return 0
  stop_component keystone 5
  local k="$D/keystone"
  OS_KEYSTONE_CONFIG_DIR="$k" OS_KEYSTONE_CONFIG_FILES=keystone.conf start_detached keystone \
    env OS_KEYSTONE_CONFIG_DIR="$k" OS_KEYSTONE_CONFIG_FILES=keystone.conf \
    uwsgi --plugin python3 --http-socket "127.0.0.1:$KEYSTONE_PORT" --wsgi-file /usr/bin/keystone-wsgi-public \
    --processes 4 --threads 1 --master --die-on-term --add-header "Connection: close" --need-app
  wait_for keystone 60 keystone_healthy
}

keystone_stop() { stop_component keystone 15; }

keystone_setup() {
  local k="$D/keystone" m="keystone-manage --config-file $D/keystone/keystone.conf"
  keystone_conf
  if [ ! -f "$k/.bootstrapped" ]; then
    log "keystone: db_sync, fernet keys, bootstrap"
    rm -f "$k/keystone.db"
    # (sqlite without WAL: concurrent writes failed with "database is locked".)
    {
      $m db_sync &&
      sqlite3 "$k/keystone.db" 'PRAGMA journal_mode=WAL;' &&
      $m fernet_setup --keystone-user root --keystone-group root &&
      $m credential_setup --keystone-user root --keystone-group root &&
      $m bootstrap --bootstrap-password "$KEYSTONE_ADMIN_PASSWORD" \
        --bootstrap-admin-url "http://127.0.0.1:$KEYSTONE_PORT/v3/" \
        --bootstrap-public-url "http://127.0.0.1:$KEYSTONE_PORT/v3/" \
        --bootstrap-region-id RegionOne
    } >>"$LOGS/keystone-manage.log" 2>&1 || { tail -20 "$LOGS/keystone-manage.log" >&2; return 1; }
    touch "$k/.bootstrapped"
  fi
  keystone_start
  if [ ! -f "$k/.seeded" ]; then
    log "keystone: seeding projects, roles and users"
    KEYSTONE_URL="http://127.0.0.1:$KEYSTONE_PORT/v3" "$PY" "$ENV_DIR/seed-keystone.py" "$D/secrets.env"
    touch "$k/.seeded"
  fi
}

# --- etcd ---------------------------------------------------------------------------------------------------------

etcd_healthy() { curl -fsS -m 3 "http://127.0.0.1:$ETCD_PORT/health" | grep -q true; }

etcd_start() {
  is_running etcd && etcd_healthy && return 0
  stop_component etcd 5
  mkdir -p "$D/etcd"
  start_detached etcd etcd --name e2e --data-dir "$D/etcd/data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "e2e=http://127.0.0.1:$ETCD_PEER_PORT"
  wait_for etcd 30 etcd_healthy
}

etcd_stop() { stop_component etcd 10; }

# --- Kubernetes ---------------------------------------------------------------------------------------------------

k8s_files() { # state dir, admin token, gateway token: service-account keys and the static token file
  local k=$1
  mkdir -p "$k/certs"
  [ -f "$k/sa.key" ] || {
    openssl genrsa -out "$k/sa.key" 2048 >/dev/null 2>&1
    openssl rsa -in "$k/sa.key" -pubout -out "$k/sa.pub" >/dev/null 2>&1
  }
  umask 077
  printf '%s,e2e-admin,e2e-admin,"system:masters"\n%s,zun-gateway,zun-gateway\n' "$2" "$3" >"$k/tokens.csv"
  umask 022
}

write_kubeconfig() { # file cluster-name port state-dir user token
  local ca_data
  ca_data=$(base64 -w0 <"$4/certs/apiserver.crt")
  umask 077
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: $2
  cluster:
    server: https://127.0.0.1:$3
    certificate-authority-data: $ca_data
users:
- name: $5
  user:
    token: $6
contexts:
- name: $2
  context: {cluster: $2, user: $5}
current-context: $2
KC
  umask 022
}

apiserver_ready() { # port state-dir admin-token
  curl -fsS -m 5 --cacert "$2/certs/apiserver.crt" -H "Authorization: Bearer $3" "https://127.0.0.1:$1/readyz" | grep -q ok
}
apiserver_healthy() { apiserver_ready "$APISERVER_PORT" "$D/k8s" "$K8S_ADMIN_TOKEN"; }

# One kube-apiserver: name (its log and pidfile), port, state dir (certs/, tokens.csv, sa.key), more flags.
start_apiserver() {
  local name=$1 port=$2 k=$3; shift 3
  start_detached "$name" "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" --secure-port="$port" --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 --cert-dir="$k/certs" --authorization-mode=Node,RBAC \
    --token-auth-file="$k/tokens.csv" --service-account-key-file="$k/sa.pub" \
    --service-account-signing-key-file="$k/sa.key" --service-account-issuer=https://kubernetes.default.svc \
    --service-cluster-ip-range=10.0.0.0/24 --insecure-port=0 --disable-admission-plugins=ServiceAccount \
    --allow-privileged=true --kubelet-preferred-address-types=Hostname --profiling=false "$@"
}

write_kubeconfigs() {
  write_kubeconfig "$D/k8s/admin.kubeconfig" e2e "$APISERVER_PORT" "$D/k8s" e2e-admin "$K8S_ADMIN_TOKEN"
  write_kubeconfig "$D/k8s/gateway.kubeconfig" e2e "$APISERVER_PORT" "$D/k8s" zun-gateway "$K8S_GATEWAY_TOKEN"
}

apiserver_start() {
  if is_running apiserver && apiserver_healthy; then
    if [ ! -f "$D/k8s/admin.kubeconfig" ] || [ ! -f "$D/k8s/gateway.kubeconfig" ]; then write_kubeconfigs; fi
    return 0
  fi
  stop_component apiserver 5
  k8s_files "$D/k8s" "$K8S_ADMIN_TOKEN" "$K8S_GATEWAY_TOKEN"
  start_apiserver apiserver "$APISERVER_PORT" "$D/k8s"
  wait_for apiserver 90 apiserver_healthy || return 1
  write_kubeconfigs
}

apiserver_stop() { stop_component apiserver 20 3; }

# The second cluster, "west": another kube-apiserver on the same etcd under its own key prefix, so it shares nothing
# with the first but the binary and the etcd process. Its own certificates, tokens and service-account keys; no
# kubelet and no scheduler (no pod runs there); a controller manager of its own.
KW="$D/k8s-west"
apiserver_west_healthy() { apiserver_ready "$APISERVER_WEST_PORT" "$KW" "$K8S_WEST_ADMIN_TOKEN"; }

write_west_kubeconfigs() {
  write_kubeconfig "$KW/admin.kubeconfig" e2e-west "$APISERVER_WEST_PORT" "$KW" e2e-admin "$K8S_WEST_ADMIN_TOKEN"
  write_kubeconfig "$KW/gateway.kubeconfig" e2e-west "$APISERVER_WEST_PORT" "$KW" zun-gateway "$K8S_WEST_GATEWAY_TOKEN"
}

apiserver_west_start() {
  if is_running apiserver-west && apiserver_west_healthy; then
    if [ ! -f "$KW/admin.kubeconfig" ] || [ ! -f "$KW/gateway.kubeconfig" ]; then write_west_kubeconfigs; fi
    return 0
  fi
  stop_component apiserver-west 5
  k8s_files "$KW" "$K8S_WEST_ADMIN_TOKEN" "$K8S_WEST_GATEWAY_TOKEN"
  start_apiserver apiserver-west "$APISERVER_WEST_PORT" "$KW" --etcd-prefix=/registry-west
  wait_for apiserver-west 90 apiserver_west_healthy || return 1
  write_west_kubeconfigs
}

apiserver_west_stop() { stop_component apiserver-west 20 3; }

# The west cluster's controller manager: without it the aggregated ClusterRoles (admin, edit, view, which the
# gateway's role mapping binds) have no rules, and a deleted namespace stays Terminating forever.
west_roles_aggregated() {
  curl -fsS -m 5 --cacert "$KW/certs/apiserver.crt" -H "Authorization: Bearer $K8S_WEST_ADMIN_TOKEN" \
    "https://127.0.0.1:$APISERVER_WEST_PORT/apis/rbac.authorization.k8s.io/v1/clusterroles/edit" |
    "$PY" -c 'import json, sys; sys.exit(0 if json.load(sys.stdin).get("rules") else 1)'
}
controller_manager_west_start() {
  controller_manager_start controller-manager-west "$KW" || return 1
  wait_for controller-manager-west 60 west_roles_aggregated
}

controller_manager_start() { # [name state-dir]: the first cluster's unless given
  local name=${1:-controller-manager} k=${2:-$D/k8s}
  is_running "$name" && return 0
  start_detached "$name" "$K8S_BIN/kube-controller-manager" --kubeconfig="$k/admin.kubeconfig" \
    --leader-elect=false --controllers='*,-serviceaccount-token' --service-account-private-key-file="$k/sa.key" \
    --bind-address=127.0.0.1 --secure-port=0 --port=0 --use-service-account-credentials=false
  sleep 1
  is_running "$name" || { tail -20 "$LOGS/$name.log" >&2; return 1; }
}

scheduler_start() {
  is_running scheduler && return 0
  start_detached scheduler "$K8S_BIN/kube-scheduler" --kubeconfig="$D/k8s/admin.kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port=0 --port=0
  sleep 1
  is_running scheduler || { tail -20 "$LOGS/scheduler.log" >&2; return 1; }
}

node_ready() { # [epoch]: Ready, and (given an epoch) with a heartbeat from a kubelet that ran since then
  curl -fsS -m 5 --cacert "$D/k8s/certs/apiserver.crt" -H "Authorization: Bearer $K8S_ADMIN_TOKEN" \
    "https://127.0.0.1:$APISERVER_PORT/api/v1/nodes/localhost" | "$PY" -c '
import calendar, json, sys, time
since = int(sys.argv[1])
for c in json.load(sys.stdin)["status"]["conditions"]:
    if c["type"] == "Ready" and c["status"] == "True":
        beat = calendar.timegm(time.strptime(c["lastHeartbeatTime"], "%Y-%m-%dT%H:%M:%SZ"))
        sys.exit(0 if beat >= since else 1)
sys.exit(1)' "${1:-0}"
}

kubelet_start() {
  is_running kubelet && node_ready 0 && return 0
  stop_component kubelet 5
  local kd="$D/k8s/kubelet" since
  mkdir -p "$kd/root" "$kd/certs"
  since=$(($(date +%s) - 1))
  start_detached kubelet "$K8S_BIN/kubelet" --kubeconfig="$D/k8s/admin.kubeconfig" \
    --container-runtime=docker --docker-endpoint="unix://$DOCKER_SOCK" \
    --pod-infra-container-image=local/pause:latest --fail-swap-on=false --cgroup-driver=cgroupfs \
    --root-dir="$kd/root" --cert-dir="$kd/certs" --hostname-override=localhost --address=127.0.0.1 \
    --healthz-bind-address=127.0.0.1 --healthz-port=0 --read-only-port=0 --anonymous-auth=true \
    --authorization-mode=AlwaysAllow --image-gc-high-threshold=100 --eviction-hard='' \
    --enforce-node-allocatable='' --cgroups-per-qos=false --serialize-image-pulls=false \
    --node-status-update-frequency=4s
  wait_for kubelet 120 node_ready "$since"
}

remove_containers() { # [docker ps filter...]: docker rm -f on the private engine, if it answers
  docker_healthy 2>/dev/null || return 0
  local ids
  ids=$(docker -H "unix://$DOCKER_SOCK" ps -aq "$@" 2>/dev/null || true)
  # shellcheck disable=SC2086 # one id per word
  [ -z "$ids" ] || docker -H "unix://$DOCKER_SOCK" rm -f $ids >/dev/null 2>&1 || true
}

kubelet_stop() {
  stop_component kubelet 10 3
  # kubelet leaves its pods' containers running in the engine; they belong to nobody once it is gone.
  remove_containers --filter label=io.kubernetes.pod.name
}

REPO_DIR="$(cd "$ENV_DIR/../../.." && pwd)"
HELM="$REPO_DIR/scripts/helm"

# The real helm (v4, unpacked from the npm devDependency by scripts/helm): fails loudly when `npm ci` has not run.
check_helm() {
  local out
  out=$("$HELM" version --short 2>&1) || die "helm is unavailable, so the gateway's ClusterRole cannot be rendered from the chart: $out"
}

# The gateway's identity on this cluster (user zun-gateway, a static token; not system:masters) gets exactly the
# Helm chart's ClusterRole: rendered by the real helm from charts/zun-gateway with its default values, which match
# the e2e gateway's configuration (tenancy with the role mapping admin/edit/view, extras on). The chart binds its
# ClusterRole to the pods' ServiceAccount; here the gateway runs outside the cluster as a user, so this env keeps its
# own ClusterRoleBinding to User zun-gateway instead of the chart's (which would also bind a ServiceAccount nothing
# here uses). test/e2e/chart.e2e.ts checks the live ClusterRole against the chart. The same on both clusters.
apply_gateway_rbac() { # [admin kubeconfig]
  local kubeconfig=${1:-$D/k8s/admin.kubeconfig} role out
  check_helm
  role=$("$HELM" template zun-gateway "$REPO_DIR/charts/zun-gateway" --show-only templates/clusterrole.yaml 2>&1) ||
    { printf 'e2e env: helm could not render the ClusterRole from charts/zun-gateway:\n%s\n' "$role" >&2; return 1; }
  grep -q '^kind: ClusterRole$' <<<"$role" || { printf 'e2e env: the chart rendered no ClusterRole:\n%s\n' "$role" >&2; return 1; }
  out=$(kubectl --kubeconfig "$kubeconfig" apply -f - 2>&1 <<EOF
$role
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: zun-gateway
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: zun-gateway}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: zun-gateway}
EOF
) || { printf '%s\n' "$out" >&2; return 1; }
}

# --- Docker engine ------------------------------------------------------------------------------------------------

docker_healthy() { curl -fsS -m 3 --unix-socket "$DOCKER_SOCK" http://docker/_ping | grep -q OK; }
docker_tls_healthy() {
  curl -fs -m 3 --cacert "$D/tls/ca.crt" --cert "$D/tls/docker-client.crt" --key "$D/tls/docker-client.key" \
    "https://127.0.0.1:$DOCKER_TLS_PORT/_ping" | grep -q OK
}
docker_both_healthy() { docker_healthy && docker_tls_healthy; }

# After dockerd died uncleanly, its containerd shims and their containers may still run: without them dockerd marks the
# containers exited but their processes stay (seen: orphaned `sleep`s under init). Only ever called with this engine's
# dockerd stopped; only touches shims of this engine's containerd socket and processes in cgroups named after this
# engine's container ids.
reap_engine_leftovers() {
  local dd="$D/docker" f pid id procs
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    if { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -q -F -- "-address $dd/exec/containerd/containerd.sock"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for id in "$dd"/data/containers/*; do
    id=${id##*/}
    for f in /sys/fs/cgroup/pids/docker/"$id"/cgroup.procs /sys/fs/cgroup/docker/"$id"/cgroup.procs; do
      [ -r "$f" ] || continue
      procs=$(cat "$f" 2>/dev/null || true)
      # shellcheck disable=SC2086
      [ -z "$procs" ] || kill -KILL $procs 2>/dev/null || true
    done
  done
}

# The engine's command line. --iptables=true: Docker keeps its bridge networks (each project's zun-<id>) apart in its
# DOCKER-ISOLATION chains; no default bridge, no masquerading (nothing here leaves the machine). Address pools for 256
# networks, as docs/operations.md advises (the default ~30 ran out on an engine many runs had used).
dockerd_args() {
  local dd="$D/docker"
  DOCKERD_ARGS=(--host "unix://$DOCKER_SOCK" --host "tcp://127.0.0.1:$DOCKER_TLS_PORT" --tlsverify
    --tlscacert "$D/tls/ca.crt" --tlscert "$D/tls/docker-server.crt" --tlskey "$D/tls/docker-server.key"
    --data-root "$(readlink -f "$dd/data")" --exec-root "$(readlink -f "$dd/exec")" --pidfile "$dd/dockerd.pid"
    --iptables=true --ip-masq=false --bridge=none --default-address-pool base=10.200.0.0/16,size=24 --add-runtime "clamp=$dd/runc-clamp-oom" --default-runtime=clamp)
}

# Whether the running dockerd was started with exactly these arguments (read from the process, so an engine that
# someone else's copy of these scripts started with other flags is told apart).
dockerd_runs_with_args() {
  local p
  p=$(pid_of dockerd) && [ -r "/proc/$p/cmdline" ] || return 1
  [ "$(tr '\0' '\n' <"/proc/$p/cmdline")" = "$(printf '%s\n' dockerd "${DOCKERD_ARGS[@]}")" ]
}

dockerd_start() {
  mkdir -p "$D/docker/data" "$D/docker/exec"
  dockerd_args
  # Before the engine, so that no tenant container ever runs without them.
  ensure_engine_isolation
  # An engine started with other flags (before the TLS listener, or with --iptables=false) is restarted once.
  if is_running dockerd && docker_healthy && docker_tls_healthy && dockerd_runs_with_args; then
    check_engine_iptables
    return
  fi
  dockerd_stop
  local dd="$D/docker"
  mkdir -p "$dd/data" "$dd/exec"
  # After an unclean stop a stale containerd socket keeps dockerd from starting.
  rm -rf "$dd/exec/containerd" "$DOCKER_SOCK"
  cat >"$dd/runc-clamp-oom" <<'WRAP'
#!/bin/sh
# This VM forbids negative oom_score_adj; kubelet asks -998 for every sandbox. Clamp it in the bundle, then run runc.
bundle=""
prev=""
for a in "$@"; do
  if [ "$prev" = "--bundle" ] || [ "$prev" = "-b" ]; then bundle="$a"; fi
  prev="$a"
done
if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
  sed -i -E 's/"oomScoreAdj":-[0-9]+/"oomScoreAdj":0/' "$bundle/config.json"
fi
exec /usr/sbin/runc "$@"
WRAP
  chmod +x "$dd/runc-clamp-oom"
  start_detached dockerd dockerd "${DOCKERD_ARGS[@]}"
  wait_for dockerd 60 docker_both_healthy || return 1
  check_engine_iptables
}

# Docker filters forwarded traffic only: a container reaches every address of its host (its bridge's gateway address,
# the other bridges', the machine's own) on every port. These rules refuse what comes in from the engine's bridges
# (user-defined bridges are named br-<network id>; --bridge=none, so there is no docker0) except replies to
# connections the host opened. Containers need nothing else from the host: Docker's embedded DNS resolver answers
# inside each container's own network namespace. docs/operations.md gives the same rules to operators.
ISOLATION_CHAIN=ZUN-BRIDGES-TO-HOST
isolation_rules_ok() { # iptables|ip6tables reject-with
  local ipt=$1
  $ipt -C "$ISOLATION_CHAIN" -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN 2>/dev/null &&
    $ipt -C "$ISOLATION_CHAIN" -j REJECT --reject-with "$2" 2>/dev/null &&
    [ "$($ipt -S "$ISOLATION_CHAIN" 2>/dev/null | wc -l)" = 3 ] &&
    $ipt -C INPUT -i br-+ -j "$ISOLATION_CHAIN" 2>/dev/null
}

ensure_engine_isolation() {
  local ipt reject
  for ipt in iptables ip6tables; do
    if [ "$ipt" = iptables ]; then reject=icmp-admin-prohibited; else reject=icmp6-adm-prohibited; fi
    isolation_rules_ok "$ipt" "$reject" && continue
    log "$ipt: refusing traffic from the engine's bridges to this host (chain $ISOLATION_CHAIN)"
    $ipt -S "$ISOLATION_CHAIN" >/dev/null 2>&1 || $ipt -N "$ISOLATION_CHAIN" ||
      die "$ipt cannot create the chain $ISOLATION_CHAIN"
    # The REJECT goes in first, so the chain never lets everything through while it is rebuilt.
    $ipt -I "$ISOLATION_CHAIN" 1 -j REJECT --reject-with "$reject" &&
      while [ "$($ipt -S "$ISOLATION_CHAIN" 2>/dev/null | wc -l)" -gt 2 ]; do $ipt -D "$ISOLATION_CHAIN" 2; done &&
      $ipt -I "$ISOLATION_CHAIN" 1 -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN ||
      die "$ipt could not write the rules of $ISOLATION_CHAIN"
    $ipt -C INPUT -i br-+ -j "$ISOLATION_CHAIN" 2>/dev/null || $ipt -I INPUT 1 -i br-+ -j "$ISOLATION_CHAIN" ||
      die "$ipt could not send INPUT from br-+ to $ISOLATION_CHAIN"
    isolation_rules_ok "$ipt" "$reject" || die "$ipt: the rules of $ISOLATION_CHAIN are not as written: $($ipt -S "$ISOLATION_CHAIN" 2>&1)"
  done
}

remove_engine_isolation() {
  local ipt
  for ipt in iptables ip6tables; do
    while $ipt -D INPUT -i br-+ -j "$ISOLATION_CHAIN" 2>/dev/null; do :; done
    $ipt -F "$ISOLATION_CHAIN" 2>/dev/null && $ipt -X "$ISOLATION_CHAIN" 2>/dev/null || true
  done
}

# What the engine's --iptables=true sets up when it starts: a missing chain means project networks are not isolated.
check_engine_iptables() {
  iptables -C FORWARD -j DOCKER-USER 2>/dev/null && iptables -S DOCKER-ISOLATION-STAGE-2 >/dev/null 2>&1 && return 0
  echo "e2e env: dockerd runs with --iptables=true but its DOCKER-USER / DOCKER-ISOLATION chains are missing:" >&2
  iptables -S >&2 2>&1 || true
  return 1
}

dockerd_stop() {
  # Remove every container first (kubelet's and any a test made), then stop dockerd alone with TERM so that it shuts
  # its containerd down in order; the process group gets KILL only if that does not finish in time.
  remove_containers
  local p
  p=$(pid_of dockerd || true)
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
  fi
  stop_component dockerd 5
  reap_engine_leftovers
}

# Unmounts whatever the engine or kubelet left mounted under $D (before removing state).
unmount_state() {
  local m
  awk -v d="$D/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

docker_images() {
  local dh="unix://$DOCKER_SOCK"
  if docker -H "$dh" image inspect local/busybox:latest >/dev/null 2>&1 &&
    docker -H "$dh" image inspect local/pause:latest >/dev/null 2>&1; then
    return 0
  fi
  log "docker: importing local/busybox and local/pause"
  local r
  r=$(mktemp -d)
  mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/www"
  chmod 1777 "$r/tmp"
  cp /bin/busybox "$r/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$r/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  tar -C "$r" -cf "$r.tar" .
  docker -H "$dh" import -c 'ENV PATH=/bin' "$r.tar" local/busybox:latest >/dev/null
  docker -H "$dh" import -c 'ENV PATH=/bin' -c 'ENTRYPOINT ["/bin/sleep","2147483647"]' "$r.tar" local/pause:latest >/dev/null
  rm -rf "$r" "$r.tar"
}

# --- private registry -------------------------------------------------------------------------------------------
# Debian's docker-registry (distribution 2.8) with htpasswd (bcrypt) auth, on plain HTTP: dockerd treats registries
# on 127.0.0.0/8 as insecure by default (checked in private_image). Keystone holds 127.0.0.1:5000, hence :5001.

registry_auth() { printf 'user = "%s:%s"\n' "$REGISTRY_USER" "$REGISTRY_PASSWORD"; } # curl -K -: not on a command line

# Healthy: it answers, refuses a request without credentials and accepts one with them.
registry_healthy() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' -m 3 "http://$REGISTRY_ADDR/v2/")" = 401 ] &&
    registry_auth | curl -fsS -m 3 -K - -o /dev/null "http://$REGISTRY_ADDR/v2/"
}

registry_start() {
  is_running registry && registry_healthy && return 0
  stop_component registry 5
  local r="$D/registry"
  mkdir -p "$r/data"
  umask 077
  printf '%s' "$REGISTRY_PASSWORD" | htpasswd -Bic "$r/htpasswd" "$REGISTRY_USER" >/dev/null 2>&1 ||
    { umask 022; echo "e2e env: htpasswd -B could not write $r/htpasswd" >&2; return 1; }
  cat >"$r/config.yml" <<CONF
version: 0.1
log: {level: info, fields: {service: registry}}
storage:
  filesystem: {rootdirectory: $r/data}
  delete: {enabled: true}
http:
  addr: $REGISTRY_ADDR
  secret: $REGISTRY_HTTP_SECRET
  headers: {X-Content-Type-Options: [nosniff]}
auth:
  htpasswd: {realm: zun-gateway-e2e, path: $r/htpasswd}
CONF
  umask 022
  start_detached registry docker-registry serve "$r/config.yml"
  wait_for registry 30 registry_healthy
}

registry_stop() { stop_component registry 10; }

registry_has_private_image() {
  local repo=${PRIVATE_IMAGE#*/}
  registry_auth | curl -fsS -m 5 -K - -o /dev/null -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY_ADDR/v2/${repo%:*}/manifests/${repo##*:}" 2>/dev/null
}

# $PRIVATE_IMAGE, built from local/busybox with /secret.txt (the marker) and pushed by the real docker CLI, logged in
# with a throwaway config; then removed from the engine's cache, so that running it takes a pull with credentials.
private_image() {
  local dh="unix://$DOCKER_SOCK" cidrs cfg ctx rc=0 out
  cidrs=$(docker -H "$dh" info --format '{{json .RegistryConfig.InsecureRegistryCIDRs}}' 2>&1)
  [[ "$cidrs" == *'"127.0.0.0/8"'* ]] ||
    { echo "e2e env: the engine does not treat 127.0.0.0/8 as insecure (plain HTTP) registries: $cidrs" >&2; return 1; }
  if ! registry_has_private_image; then
    log "registry: pushing $PRIVATE_IMAGE"
    cfg=$(mktemp -d) ctx=$(mktemp -d)
    printf 'FROM local/busybox:latest\nCOPY secret.txt /secret.txt\nCMD ["cat", "/secret.txt"]\n' >"$ctx/Dockerfile"
    printf '%s\n' "$PRIVATE_IMAGE_MARKER" >"$ctx/secret.txt"
    {
      printf '%s' "$REGISTRY_PASSWORD" | DOCKER_CONFIG=$cfg docker -H "$dh" login -u "$REGISTRY_USER" --password-stdin "$REGISTRY_ADDR" &&
        DOCKER_CONFIG=$cfg DOCKER_BUILDKIT=0 docker -H "$dh" build -q -t "$PRIVATE_IMAGE" "$ctx" &&
        DOCKER_CONFIG=$cfg docker -H "$dh" push "$PRIVATE_IMAGE"
    } >>"$LOGS/registry-push.log" 2>&1 || rc=$?
    rm -rf "$cfg" "$ctx"
    [ "$rc" = 0 ] || { tail -20 "$LOGS/registry-push.log" >&2; echo "e2e env: pushing $PRIVATE_IMAGE failed" >&2; return 1; }
    registry_has_private_image || { echo "e2e env: pushed $PRIVATE_IMAGE, but the registry does not serve it" >&2; return 1; }
  fi
  if docker -H "$dh" image inspect "$PRIVATE_IMAGE" >/dev/null 2>&1; then
    out=$(docker -H "$dh" rmi "$PRIVATE_IMAGE" 2>&1) ||
      { echo "e2e env: $PRIVATE_IMAGE must not be in the engine's cache, and removing it failed: $out" >&2; return 1; }
  fi
}
