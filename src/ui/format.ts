/**
 * What the page shows, computed from what the gateway answers: no DOM here, so it runs (and is tested) under Node too.
 * Answers are read defensively: a field missing or of another type shows as "-" rather than breaking the page.
 */

export interface PodRow {
  readonly name: string;
  readonly phase: string;
  readonly restarts: number;
  readonly age: string;
}

export interface ContainerRow {
  readonly name: string;
  readonly image: string;
  readonly state: string;
}

export interface WhoAmI {
  readonly user: string;
  readonly userDomain: string;
  readonly project: string;
  readonly projectDomain: string;
  readonly roles: readonly string[];
  readonly expiresAt: string;
  readonly namespace: string | undefined;
  /** The Kubernetes clusters the project maps to, by name (one, unnamed, until the gateway lists several). */
  readonly clusters: readonly string[];
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown, fallback = '-'): string => (typeof v === 'string' && v !== '' ? v : fallback);

/** kubectl's age: the largest unit that fits, like 45s, 12m, 5h, 3d. */
export function age(created: unknown, now: number): string {
  const at = typeof created === 'string' ? Date.parse(created) : Number.NaN;
  if (Number.isNaN(at)) return '-';
  const seconds = Math.max(0, Math.floor((now - at) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 2 * 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 2 * 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** A PodList (GET /k8s/api/v1/namespaces/<ns>/pods) as rows, sorted by name. */
export function podRows(list: unknown, now: number): PodRow[] {
  const items = isObject(list) && Array.isArray(list.items) ? list.items : [];
  return items
    .filter(isObject)
    .map((pod) => {
      const metadata = isObject(pod.metadata) ? pod.metadata : {};
      const status = isObject(pod.status) ? pod.status : {};
      const statuses = Array.isArray(status.containerStatuses) ? status.containerStatuses.filter(isObject) : [];
      const restarts = statuses.reduce((sum, s) => sum + (typeof s.restartCount === 'number' ? s.restartCount : 0), 0);
      return { name: text(metadata.name), phase: text(status.phase, 'Unknown'), restarts, age: age(metadata.creationTimestamp, now) };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Docker's container list (GET /docker/v1.41/containers/json?all=1) as rows, sorted by name. */
export function containerRows(list: unknown): ContainerRow[] {
  const items = Array.isArray(list) ? list.filter(isObject) : [];
  return items
    .map((c) => {
      const names = Array.isArray(c.Names) ? c.Names : [];
      const first = typeof names[0] === 'string' ? names[0].replace(/^\//, '') : '';
      return { name: text(first, text(c.Id).slice(0, 12)), image: text(c.Image), state: text(c.State) };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The gateway's GET /whoami answer, as the page shows it. */
export function whoAmI(body: unknown): WhoAmI {
  const b = isObject(body) ? body : {};
  const user = isObject(b.user) ? b.user : {};
  const userDomain = isObject(user.domain) ? user.domain : {};
  const project = isObject(b.project) ? b.project : {};
  const projectDomain = isObject(project.domain) ? project.domain : {};
  const coes = isObject(b.coes) ? b.coes : {};
  const k8s = isObject(coes.k8s) ? coes.k8s : undefined;
  const listed = k8s !== undefined && Array.isArray(k8s.clusters) ? k8s.clusters : undefined;
  const clusters =
    listed !== undefined
      ? listed.map((c) => (typeof c === 'string' ? c : isObject(c) ? text(c.name) : '-'))
      : k8s !== undefined
        ? ['the gateway\'s cluster (/k8s)']
        : [];
  return {
    user: text(user.name),
    userDomain: text(userDomain.name),
    project: text(project.name),
    projectDomain: text(projectDomain.name),
    roles: Array.isArray(b.roles) ? b.roles.filter((r): r is string => typeof r === 'string') : [],
    expiresAt: text(b.expiresAt, ''),
    namespace: typeof b.namespace === 'string' ? b.namespace : undefined,
    clusters,
  };
}

/** "in 59 minutes" / "in 3 hours" / "expired": how long the token has left. */
export function timeLeft(expiresAt: string, now: number): string {
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) return 'unknown';
  const minutes = Math.floor((at - now) / 60_000);
  if (minutes < 0) return 'expired';
  if (minutes < 120) return `in ${minutes} minute${minutes === 1 ? '' : 's'}`;
  return `in ${Math.floor(minutes / 60)} hours`;
}

/**
 * What an error answer says: a Kubernetes Status and Docker's {"message"} and the gateway's {"error", "message"}
 * all carry `message`; otherwise the status alone.
 */
export function answerMessage(status: number, body: unknown): string {
  const message = isObject(body) ? body.message : undefined;
  return typeof message === 'string' && message.trim() !== '' ? message.trim() : `HTTP ${status}`;
}

/** The docker CLI's DOCKER_HOST for the gateway at `server` (tcp://host:port/docker; the CLI needs the port). */
export function dockerHost(server: string): string {
  const url = new URL(server);
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
  const base = url.pathname.replace(/\/+$/, '');
  // An IPv6 hostname comes in brackets already, as the docker CLI wants it.
  return `tcp://${url.hostname}:${port}${base}/docker`;
}

/** Copy-ready shell lines for the docker CLI, with an application credential the gateway exchanges for tokens. */
export function dockerCommands(server: string, withCa: boolean): string {
  return [
    'mkdir -p ~/.docker/zun',
    ...(withCa ? ['cp ~/Downloads/ca.pem ~/.docker/zun/ca.pem'] : []),
    '# an application credential of your project: it outlives tokens, the gateway exchanges it itself',
    'eval "$(openstack application credential create zun-docker -f shell -c id -c secret)"',
    `basic=$(printf '%s:%s' "$id" "$secret" | base64 | tr -d '\\n')`,
    `printf '{"HttpHeaders": {"Authorization": "Basic %s"}}\\n' "$basic" > ~/.docker/zun/config.json`,
    `export DOCKER_HOST=${dockerHost(server)} DOCKER_CONFIG=~/.docker/zun`,
    // Without a CA of its own the gateway's certificate is one the system trusts: TLS without a ca.pem.
    withCa ? 'export DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=~/.docker/zun' : 'export DOCKER_TLS=1',
    'docker ps',
  ].join('\n');
}

/** Single quotes for the shell, so that any name can be pasted as it is. */
function shellQuoted(value: string): string {
  return /^[A-Za-z0-9._@%+=:,/-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`;
}

/** Copy-ready shell lines for kubectl with the downloaded kubeconfig, for the user and project signed in. */
export function kubectlCommands(keystoneUrl: string, who: Pick<WhoAmI, 'user' | 'userDomain' | 'project' | 'projectDomain'>): string {
  return [
    '# your OpenStack credentials, as for the openstack CLI (or OS_CLOUD and clouds.yaml instead)',
    `export OS_AUTH_URL=${shellQuoted(keystoneUrl)}`,
    `export OS_USERNAME=${shellQuoted(who.user)} OS_USER_DOMAIN_NAME=${shellQuoted(who.userDomain)}`,
    `export OS_PROJECT_NAME=${shellQuoted(who.project)} OS_PROJECT_DOMAIN_NAME=${shellQuoted(who.projectDomain)}`,
    'read -rsp "OpenStack password: " OS_PASSWORD && export OS_PASSWORD',
    'export KUBECONFIG=~/Downloads/zun-gateway.kubeconfig',
    'kubectl get pods',
  ].join('\n');
}
