/**
 * What the real test environment (test/e2e/env) provides, read once from the variables `test/e2e/env/env` prints.
 * test/e2e/run exports them before mocha starts.
 */
export interface E2eEnv {
  readonly dir: string;
  readonly keystoneUrl: string;
  readonly passwords: Readonly<Record<'gateway' | 'alice' | 'bob' | 'carol' | 'dave' | 'admin', string>>;
  readonly kubeServer: string;
  /** The CA of the apiserver's serving certificate. */
  readonly kubeCa: string;
  readonly adminKubeconfig: string;
  readonly gatewayKubeconfig: string;
  /** The second cluster: another kube-apiserver on the same etcd (key prefix /registry-west), with no nodes. */
  readonly west: { readonly server: string; readonly ca: string; readonly adminKubeconfig: string; readonly gatewayKubeconfig: string };
  readonly dockerSocket: string;
  /** The same engine on tcp:// with TLS, requiring a client certificate (dockerd --tlsverify). */
  readonly dockerTls: { readonly host: string; readonly clientCert: string; readonly clientKey: string };
  readonly tlsCert: string;
  readonly tlsKey: string;
  readonly tlsCa: string;
  readonly busyboxImage: string;
  /**
   * A private registry (htpasswd auth, plain HTTP on loopback) holding `privateImage`, a busybox whose /secret.txt
   * (and default command's output) is `privateImageMarker`; `up` leaves it out of the engine's image cache.
   */
  readonly registry: { readonly address: string; readonly user: string; readonly password: string; readonly privateImage: string; readonly privateImageMarker: string };
  readonly logDir: string;
  readonly kubectl: string;
}

function need(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`${name} is not set: run the e2e suite with \`npm run test:e2e\` (it brings up test/e2e/env and exports it)`);
  }
  return value;
}

let cached: E2eEnv | undefined;

export function e2eEnv(): E2eEnv {
  cached ??= {
    dir: need('ZUN_E2E_DIR'),
    keystoneUrl: need('KEYSTONE_URL'),
    passwords: {
      gateway: need('GATEWAY_PASSWORD'),
      alice: need('ALICE_PASSWORD'),
      bob: need('BOB_PASSWORD'),
      carol: need('CAROL_PASSWORD'),
      dave: need('DAVE_PASSWORD'),
      admin: need('KEYSTONE_ADMIN_PASSWORD'),
    },
    kubeServer: need('KUBE_SERVER'),
    kubeCa: need('KUBE_CA'),
    adminKubeconfig: need('KUBE_ADMIN_KUBECONFIG'),
    gatewayKubeconfig: need('KUBE_GATEWAY_KUBECONFIG'),
    west: {
      server: need('KUBE_WEST_SERVER'),
      ca: need('KUBE_WEST_CA'),
      adminKubeconfig: need('KUBE_WEST_ADMIN_KUBECONFIG'),
      gatewayKubeconfig: need('KUBE_WEST_GATEWAY_KUBECONFIG'),
    },
    dockerSocket: need('DOCKER_SOCKET'),
    dockerTls: { host: need('DOCKER_TLS_HOST'), clientCert: need('DOCKER_TLS_CLIENT_CERT'), clientKey: need('DOCKER_TLS_CLIENT_KEY') },
    tlsCert: need('GATEWAY_TLS_CERT'),
    tlsKey: need('GATEWAY_TLS_KEY'),
    tlsCa: need('GATEWAY_TLS_CA'),
    busyboxImage: process.env.E2E_BUSYBOX_IMAGE ?? 'local/busybox:latest',
    registry: {
      address: need('ZUN_E2E_REGISTRY'),
      user: need('ZUN_E2E_REGISTRY_USER'),
      password: need('ZUN_E2E_REGISTRY_PASSWORD'),
      privateImage: need('ZUN_E2E_PRIVATE_IMAGE'),
      privateImageMarker: need('ZUN_E2E_PRIVATE_IMAGE_MARKER'),
    },
    logDir: need('E2E_LOG_DIR'),
    kubectl: process.env.E2E_KUBECTL ?? 'kubectl',
  };
  return cached;
}

/** The private registry of the env contract (htpasswd auth on loopback) and the image pushed to it at `up`. */
export interface E2eRegistry {
  /** host:port, e.g. 127.0.0.1:5001. */
  readonly address: string;
  readonly user: string;
  readonly password: string;
  /** host:port/secret/app:1: busybox-based, holds /secret.txt; not in the engine's cache after `up`. */
  readonly privateImage: string;
  /** What /secret.txt of that image holds (a line of its own). */
  readonly marker: string;
}

let registry: E2eRegistry | undefined;

/** Throws, naming the variable, when the environment has no registry: the e2e specs that need one then fail. */
export function e2eRegistry(): E2eRegistry {
  registry ??= {
    address: need('ZUN_E2E_REGISTRY'),
    user: need('ZUN_E2E_REGISTRY_USER'),
    password: need('ZUN_E2E_REGISTRY_PASSWORD'),
    privateImage: need('ZUN_E2E_PRIVATE_IMAGE'),
    marker: need('ZUN_E2E_PRIVATE_IMAGE_MARKER'),
  };
  return registry;
}
