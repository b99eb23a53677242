import http from 'node:http';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { Changes } from './changes.js';

export interface EngineRequest {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: readonly string[];
  readonly body: string;
}

interface FakeContainer {
  readonly id: string;
  readonly name: string;
  readonly labels: Record<string, string>;
}

/** An image in the engine's store: its id and the names (familiar form, `busybox:latest`, `reg:5000/a@sha256:...`). */
export interface FakeImage {
  readonly id: string;
  readonly repoTags: string[];
  readonly repoDigests: string[];
}

/** What the fake registry serves for one `repository:tag` (familiar form): the image, its manifest digest, who may pull. */
export interface RegistryEntry {
  readonly id: string;
  readonly digest: string;
  /** The registry user allowed to pull it (X-Registry-Auth's username); undefined: anyone. */
  readonly user?: string;
}

/** A name in the familiar form the engine shows (`docker.io/library/busybox` -> `busybox`), with `:latest` if untagged. */
export function familiarImage(ref: string): string {
  let name = ref.replace(/^docker\.io\//, '').replace(/^index\.docker\.io\//, '');
  if (/^library\/[^/]+$/.test(name.split(/[:@]/)[0] as string)) name = name.slice('library/'.length);
  const last = name.slice(name.lastIndexOf('/') + 1);
  return last.includes(':') || name.includes('@') ? name : `${name}:latest`;
}

/** An image id of the fake's own (`sha256:` and 64 hex digits made from a short name). */
export function fakeImageId(seed: string): string {
  return `sha256:${Buffer.from(seed).toString('hex').padEnd(64, '0').slice(0, 64)}`;
}

/** A manifest digest of the fake's own. */
export function fakeDigest(seed: string): string {
  return `sha256:${Buffer.from(`m-${seed}`).toString('hex').padEnd(64, 'f').slice(0, 64)}`;
}

/**
 * A Docker engine stand-in on a unix socket: knows a few containers and exec instances, records every request, and
 * answers exec start with a 101 hijack that echoes bytes (and writes `exec-done` on the client's half-close).
 */
export class FakeDockerEngine {
  readonly socketPath = path.join(mkdtempSync(path.join(os.tmpdir(), 'zgw-engine-')), 'docker.sock');
  readonly requests: EngineRequest[] = [];
  readonly containers: FakeContainer[] = [];
  readonly execs = new Map<string, string>();
  /** Volumes by name, with their labels; a create for an existing name answers the existing volume, as the engine does. */
  readonly volumes = new Map<string, Record<string, string>>();
  /** When set, network creates fail with this engine message (and failNetworkCreateStatus). */
  failNetworkCreate: string | undefined;
  failNetworkCreateStatus = 500;
  /** Called as a network create arrives, before the engine looks at it (another replica's create lands first). */
  beforeNetworkCreate: (() => void) | undefined;
  /**
   * As dockerd: a network create checks its name (CheckDuplicate) as it arrives, and the network is listed only once
   * made. While set, creates wait between the two, held as `/networks/create (making)` until `release()`.
   */
  slowNetworkCreates = false;
  /** What GET /info answers. */
  info: Record<string, unknown> = { ServerVersion: '20.10.24', BridgeNfIptables: true };
  /** Networks (by name) made with IPv6. */
  readonly ipv6Networks = new Set<string>();
  /** When set, volume creates fail with this engine message (HTTP 500). */
  failVolumeCreate: string | undefined;
  /** Networks by name (ids are `net-<name>`), with their labels. */
  readonly networks = new Map<string, Record<string, string>>();
  /** How many containers GET /containers/json reports; each create adds one. */
  listed = 0;
  /** The image store: `busybox` (also tagged `b`) unless a test changes it. */
  readonly images: FakeImage[] = [{ id: fakeImageId('busybox'), repoTags: ['busybox:latest', 'b:latest'], repoDigests: [] }];
  /** What pulls can fetch, by `repository:tag` in familiar form. */
  readonly registry = new Map<string, RegistryEntry>();
  /** When set, a pull writes this engine error line after its first progress line (status 200 by then), and stops. */
  pullErrorLine: string | undefined;
  /** While set, a pull writes its first line and then waits for this before going on. */
  pullGate: Promise<void> | undefined;
  /** Called when a pull's first line is written (the client has the response head). */
  onPullStarted: (() => void) | undefined;
  /** Called when a pull's connection closes before the engine finished it (the gateway tore it down). */
  onPullTornDown: (() => void) | undefined;
  /** Containers made by creates: id -> the image id they were made from. */
  readonly created = new Map<string, string>();
  /** Called as a container create arrives, before its image is looked up (a test moves a tag here). */
  onCreate: (() => void) | undefined;
  /** Requests (by path, API version stripped) the engine holds, unanswered, until `release()`. */
  hold: (path: string) => boolean = () => false;
  private readonly holding: Array<{ readonly path: string; readonly answer: () => void }> = [];
  /** Tells of every request, create, close and cut-off body, for tests to wait on. */
  readonly changes = new Changes();
  /** Requests (by path, API version stripped) the engine accepts and never answers; their close times are recorded. */
  neverAnswer: (path: string) => boolean = () => false;
  readonly unansweredClosedAt = new Map<string, number>();
  /** Requests whose connection closed before their body had fully arrived (the sender gave up mid-upload). */
  bodiesCutOff = 0;
  /** Body bytes received, all requests together. */
  bodyBytes = 0;
  /** The paths (API version stripped) of the requests whose head has arrived, in order. */
  readonly arrived: string[] = [];
  /** While set, a hijack whose body has arrived waits for this before it is answered 101. */
  upgradeGate: Promise<void> | undefined;
  /** Called as each ordinary request's head arrives, with its path (API version stripped). */
  onRequestArrived: ((path: string) => void) | undefined;
  /** Called when a hijack's request and body have arrived (before any gate). */
  onUpgradeRequest: (() => void) | undefined;
  private readonly server = http.createServer((req, res) => this.onRequest(req, res));

  constructor() {
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  /** How many requests for `path` are held. */
  held(path: string): number {
    return this.holding.filter((h) => h.path === path).length;
  }

  /** Answers the requests held so far (those for `path` only, when given). */
  release(path?: string): void {
    for (const h of [...this.holding]) {
      if (path !== undefined && h.path !== path) continue;
      this.holding.splice(this.holding.indexOf(h), 1);
      h.answer();
    }
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(this.socketPath, r));
    return this;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  private find(ref: string): FakeContainer | undefined {
    return this.containers.find((c) => c.id === ref || c.name === ref || (ref.length >= 3 && c.id.startsWith(ref)));
  }

  private send(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'api-version': '1.41' });
    res.end(text);
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.onRequestArrived?.((req.url ?? '').split('?')[0]?.replace(/^\/v1\.\d+/, '') ?? '');
    this.arrived.push((req.url ?? '').split('?')[0]?.replace(/^\/v1\.\d+/, '') ?? '');
    this.changes.notify();
    req.on('close', () => {
      if (!req.complete) this.bodiesCutOff += 1;
      this.changes.notify();
    });
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString('utf8');
      this.bodyBytes += d.length;
      this.changes.notify();
    });
    req.on('end', () => {
      this.requests.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: [...req.rawHeaders], body });
      const p = (req.url ?? '').split('?')[0]?.replace(/^\/v1\.\d+/, '') ?? '';
      if (this.hold(p)) this.holding.push({ path: p, answer: () => this.answer(req, res, p, body) });
      else this.answer(req, res, p, body);
      this.changes.notify();
    });
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse, p: string, body: string): void {
    {
      let m: RegExpExecArray | null;
      if (this.neverAnswer(p)) {
        res.on('close', () => {
          this.unansweredClosedAt.set(req.url ?? '', Date.now());
          this.changes.notify();
        });
        return;
      }
      if (p === '/_ping') {
        res.writeHead(200, { 'api-version': '1.41', 'content-type': 'text/plain' });
        res.end(req.method === 'HEAD' ? undefined : 'OK');
        return;
      }
      if ((m = /^\/images\/(.+)\/json$/.exec(p)) && req.method === 'GET') {
        const ref = m[1]!.split('/').map(decodeURIComponent).join('/');
        if (ref !== ref.toLowerCase() && !ref.startsWith('sha256:')) return this.send(res, 400, { message: `no such image: ${ref}: invalid reference format: repository name must be lowercase` });
        const image = this.findImage(ref);
        if (!image) return this.send(res, 404, { message: `no such image: ${ref}: No such image: ${familiarImage(ref)}` });
        return this.send(res, 200, { Id: image.id, RepoTags: image.repoTags, RepoDigests: image.repoDigests, Config: { Cmd: ['sh'] } });
      }
      if (p === '/images/json') {
        return this.send(res, 200, this.images.map((i) => ({ Id: i.id, RepoTags: i.repoTags, RepoDigests: i.repoDigests, Size: 1, Containers: -1 })));
      }
      if (p === '/images/create' && req.method === 'POST') return this.pull(req, res);
      if (p === '/volumes' && req.method === 'GET') {
        const q = new URL(`http://x${req.url ?? ''}`).searchParams.get('filters');
        // Both of the engine's shapes: {"label": ["k=v"]} and {"label": {"k=v": true}}.
        const label = q === null ? [] : ((JSON.parse(q) as { label?: string[] | Record<string, boolean> }).label ?? []);
        const wanted = Array.isArray(label) ? label : Object.keys(label);
        const matches = (labels: Record<string, string>): boolean =>
          wanted.every((kv) => (kv.includes('=') ? labels[kv.slice(0, kv.indexOf('='))] === kv.slice(kv.indexOf('=') + 1) : kv in labels));
        const listed = [...this.volumes].filter(([, labels]) => matches(labels));
        return this.send(res, 200, { Volumes: listed.map(([name, labels]) => ({ Name: name, Labels: labels, Driver: 'local' })), Warnings: null });
      }
      if ((m = /^\/containers\/([^/]+)$/.exec(p)) && req.method === 'DELETE' && this.created.has(m[1] as string)) {
        this.created.delete(m[1] as string);
        res.writeHead(204).end();
        return;
      }
      if ((m = /^\/containers\/([^/]+)\/json$/.exec(p)) && this.created.has(m[1] as string)) {
        return this.send(res, 200, { Id: m[1], Name: `/${m[1]}`, Image: this.created.get(m[1] as string), Config: { Labels: {} } });
      }
      if ((m = /^\/containers\/([^/]+)\/json$/.exec(p))) {
        const c = this.find(decodeURIComponent(m[1] as string));
        if (!c) return this.send(res, 404, { message: `No such container: ${decodeURIComponent(m[1] as string)}` });
        return this.send(res, 200, { Id: c.id, Name: `/${c.name}`, Config: { Labels: c.labels } });
      }
      if ((m = /^\/exec\/([^/]+)\/json$/.exec(p))) {
        const container = this.execs.get(m[1] as string);
        if (!container) return this.send(res, 404, { message: `No such exec instance: ${m[1]}` });
        return this.send(res, 200, { ID: m[1], ContainerID: container });
      }
      if ((m = /^\/volumes\/([^/]+)$/.exec(p)) && req.method === 'GET') {
        const name = decodeURIComponent(m[1] as string);
        const labels = this.volumes.get(name);
        if (!labels) return this.send(res, 404, { message: `get ${name}: no such volume` });
        return this.send(res, 200, { Name: name, Labels: labels, Mountpoint: `/var/lib/docker/volumes/${name}/_data` });
      }
      if ((m = /^\/volumes\/([^/]+)$/.exec(p)) && req.method === 'DELETE') {
        const name = decodeURIComponent(m[1] as string);
        if (!this.volumes.delete(name)) return this.send(res, 404, { message: `get ${name}: no such volume` });
        res.writeHead(204);
        res.end();
        return;
      }
      if (p === '/volumes/create' && this.failVolumeCreate !== undefined) return this.send(res, 500, { message: this.failVolumeCreate });
      if (p === '/volumes/create') {
        const spec = JSON.parse(body || '{}') as { Name?: string; Labels?: Record<string, string> };
        const name = spec.Name ?? `anon${this.volumes.size}`;
        if (!this.volumes.has(name)) this.volumes.set(name, spec.Labels ?? {});
        return this.send(res, 201, { Name: name, Labels: this.volumes.get(name), Mountpoint: `/var/lib/docker/volumes/${name}/_data` });
      }
      if (p === '/networks' && req.method === 'GET') {
        const q = new URL(`http://x${req.url ?? ''}`).searchParams.get('filters');
        const wanted: string[] = q === null ? [] : ((JSON.parse(q) as { label?: string[] }).label ?? []);
        // As the engine: `key=value` matches that value, a bare `key` any value.
        const has = (labels: Record<string, string>, kv: string): boolean =>
          kv.includes('=') ? labels[kv.slice(0, kv.indexOf('='))] === kv.slice(kv.indexOf('=') + 1) : kv in labels;
        const listed = [...this.networks].filter(([, labels]) => wanted.every((kv) => has(labels, kv)));
        return this.send(res, 200, listed.map(([name, labels]) => ({ Id: `net-${name}`, Name: name, Labels: labels, Created: '2026-01-01T00:00:00Z', EnableIPv6: this.ipv6Networks.has(name) })));
      }
      if (p === '/networks/create' && this.failNetworkCreate !== undefined) return this.send(res, this.failNetworkCreateStatus, { message: this.failNetworkCreate });
      if (p === '/networks/create') {
        this.beforeNetworkCreate?.();
        const spec = JSON.parse(body || '{}') as { Name: string; Labels?: Record<string, string>; CheckDuplicate?: boolean };
        // As dockerd 20.10: names may repeat unless CheckDuplicate asks for a conflict.
        if (spec.CheckDuplicate === true && this.networks.has(spec.Name)) return this.send(res, 409, { message: `network with name ${spec.Name} already exists` });
        const make = (): void => {
          if (this.networks.has(spec.Name)) {
            this.networks.set(`${spec.Name}-dup-${this.networks.size}`, spec.Labels ?? {});
            return this.send(res, 201, { Id: `net-${spec.Name}-dup-${this.networks.size - 1}`, Warning: '' });
          }
          this.networks.set(spec.Name, spec.Labels ?? {});
          return this.send(res, 201, { Id: `net-${spec.Name}`, Warning: '' });
        };
        if (!this.slowNetworkCreates) return make();
        this.holding.push({ path: '/networks/create (making)', answer: make });
        this.changes.notify();
        return;
      }
      if ((m = /^\/networks\/([^/]+)$/.exec(p)) && req.method === 'GET') {
        const ref = decodeURIComponent(m[1] as string);
        const name = ref.startsWith('net-') ? ref.slice(4) : ref;
        const labels = this.networks.get(name);
        if (!labels) return this.send(res, 404, { message: `network ${ref} not found` });
        return this.send(res, 200, { Id: `net-${name}`, Name: name, Labels: labels });
      }
      if (p === '/info') return this.send(res, 200, this.info);
      if (p === '/containers/json') return this.send(res, 200, Array.from({ length: this.listed }, (_, i) => ({ Id: `c${i}` })));
      if (p === '/containers/create') {
        this.onCreate?.();
        const spec = JSON.parse(body || '{}') as { Image?: string };
        const image = spec.Image === undefined || spec.Image === '' ? undefined : this.findImage(spec.Image);
        if (spec.Image !== undefined && spec.Image !== '' && image === undefined) return this.send(res, 404, { message: `No such image: ${familiarImage(spec.Image)}` });
        // As a real engine: the new container is listed from then on (once answered, when creates are held).
        this.listed += 1;
        const id = `new-id-${this.created.size}-${this.listed}`;
        this.created.set(id, image?.id ?? '');
        return this.send(res, 201, { Id: id, Warnings: [] });
      }
      return this.send(res, 200, { ok: true });
    }
  }

  /** An image by id, id prefix, name (`busybox`, `busybox:latest`, `docker.io/library/busybox`) or `name@digest`. */
  findImage(ref: string): FakeImage | undefined {
    const id = /^[0-9a-f]{64}$/.test(ref) ? `sha256:${ref}` : ref;
    const byId = this.images.find((i) => i.id === id || (ref.length >= 4 && /^[0-9a-f]+$/.test(ref) && i.id.startsWith(`sha256:${ref}`)));
    if (byId) return byId;
    const name = familiarImage(ref);
    return this.images.find((i) => (name.includes('@') ? i.repoDigests : i.repoTags).includes(name));
  }

  /** Puts `name` (familiar `repo:tag` or `repo@digest`) on the image `id`, taking it off any other, as a pull does. */
  tagImage(id: string, name: string): void {
    const digest = name.includes('@');
    for (const i of this.images) {
      const names = digest ? i.repoDigests : i.repoTags;
      if (names.includes(name) && i.id !== id) names.splice(names.indexOf(name), 1);
    }
    let image = this.images.find((i) => i.id === id);
    if (!image) {
      image = { id, repoTags: [], repoDigests: [] };
      this.images.push(image);
    }
    const names = digest ? image.repoDigests : image.repoTags;
    if (!names.includes(name)) names.push(name);
  }

  /**
   * POST /images/create?fromImage=&tag= as Docker 20.10 answers it: errors before any progress are HTTP errors, later
   * ones are `{"error": ...}` lines; a pull by digest of an image the engine has is answered from its store without
   * asking the registry (and without credentials); a pull by tag always asks.
   */
  private pull(req: http.IncomingMessage, res: http.ServerResponse): void {
    const q = new URL(`http://x${req.url ?? ''}`).searchParams;
    const from = q.get('fromImage') ?? '';
    const tag = q.get('tag') ?? '';
    if (from !== from.toLowerCase()) return this.send(res, 400, { message: 'invalid reference format: repository name must be lowercase' });
    const full = familiarImage(from).split('@')[0] as string;
    const repo = full.slice(0, full.lastIndexOf(':'));
    const byDigest = tag.startsWith('sha256:') || from.includes('@');
    const digest = byDigest ? (tag.startsWith('sha256:') ? tag : from.slice(from.indexOf('@') + 1)) : undefined;
    const name = digest !== undefined ? `${repo}@${digest}` : `${repo}:${tag || 'latest'}`;
    const auth = req.headers['x-registry-auth'];
    const user = typeof auth === 'string' ? (JSON.parse(Buffer.from(auth, 'base64url').toString('utf8') || '{}') as { username?: string }).username : undefined;
    const present = digest !== undefined ? this.findImage(name) : undefined;
    const entry = present !== undefined ? undefined : digest !== undefined ? [...this.registry.entries()].find(([k, e]) => k.startsWith(`${repo}:`) && e.digest === digest)?.[1] : this.registry.get(name);
    if (present === undefined) {
      if (entry === undefined) return this.send(res, 404, { message: `manifest for ${name} not found: manifest unknown: manifest unknown` });
      if (entry.user !== undefined && user !== entry.user) return this.send(res, 500, { message: `Head "https://registry/v2/${repo}/manifests/${tag}": no basic auth credentials` });
    }
    res.writeHead(200, { 'content-type': 'application/json', 'api-version': '1.41' });
    res.on('close', () => {
      if (!res.writableFinished) this.onPullTornDown?.();
    });
    const line = (o: unknown): boolean => res.write(`${JSON.stringify(o)}\r\n`);
    line({ status: `Pulling from ${repo}`, id: digest ?? (tag || 'latest') });
    this.onPullStarted?.();
    const finish = (): void => {
      if (this.pullErrorLine !== undefined) {
        line({ errorDetail: { message: this.pullErrorLine }, error: this.pullErrorLine });
        res.end();
        return;
      }
      const id = present?.id ?? (entry as RegistryEntry).id;
      const manifest = digest ?? (entry as RegistryEntry).digest;
      if (present === undefined) line({ status: 'Pull complete', progressDetail: {}, id: id.slice(7, 19) });
      line({ status: `Digest: ${manifest}` });
      this.tagImage(id, `${repo}@${manifest}`);
      if (digest === undefined) this.tagImage(id, name);
      line({ status: `Status: ${present ? 'Image is up to date' : 'Downloaded newer image'} for ${name}` });
      res.end();
    };
    if (this.pullGate !== undefined) void this.pullGate.then(finish);
    else finish();
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    // The engine reads the exec start body before it answers 101.
    const length = Number(req.headers['content-length'] ?? 0);
    let received = head;
    const answer = (): void => {
      this.onUpgradeRequest?.();
      if (this.upgradeGate !== undefined) {
        // Bytes the client sends meanwhile wait in the socket, as they do in a real engine's.
        socket.pause();
        void this.upgradeGate.then(respond);
      } else respond();
    };
    const respond = (): void => {
      this.requests.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: [...req.rawHeaders], body: received.subarray(0, length).toString() });
      (socket as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true;
      socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
      const rest = received.subarray(length);
      if (rest.length > 0) socket.write(`out:${rest.toString()}`);
      socket.on('data', (d: Buffer) => socket.write(`out:${d.toString()}`));
      socket.on('end', () => socket.end('exec-done'));
      socket.resume();
    };
    if (received.length >= length) return answer();
    const onData = (d: Buffer): void => {
      received = Buffer.concat([received, d]);
      if (received.length >= length) {
        socket.off('data', onData);
        answer();
      }
    };
    socket.on('data', onData);
  }
}
