import http from 'node:http';
import https from 'node:https';

export interface Timed {
  readonly status: number;
  readonly ttfbMs: number;
  readonly totalMs: number;
  readonly bytes: number;
}

/** Header pairs as Node's request options take them: a repeated name becomes a list (sent as one line each). */
export function headerObject(headers: ReadonlyArray<readonly [string, string]>): http.OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of headers) {
    const have = out[k];
    out[k] = have === undefined ? v : Array.isArray(have) ? [...have, v] : [have, v];
  }
  return out;
}

/** One request, the body streamed and discarded: time to the first body byte and to the end. */
export function timedGet(url: string, headers: ReadonlyArray<readonly [string, string]>, ca?: Buffer | Buffer[], agent?: http.Agent): Promise<Timed> {
  const u = new URL(url);
  const transport = u.protocol === 'https:' ? https : http;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = transport.request(u, { method: 'GET', headers: headerObject(headers), ...(ca ? { ca } : {}), ...(agent ? { agent } : { agent: false }) }, (res) => {
      let first = 0;
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        if (first === 0) first = performance.now();
        bytes += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ttfbMs: (first || performance.now()) - started, totalMs: performance.now() - started, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A closed-loop load: `concurrency` workers issuing requests back to back for `seconds`; latencies in ms. */
export async function closedLoop(request: () => Promise<number>, concurrency: number, seconds: number): Promise<{ rps: number; latencies: number[]; errors: number }> {
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const started = performance.now();
      try {
        const status = await request();
        if (status >= 400) errors += 1;
      } catch {
        errors += 1;
      }
      latencies.push(performance.now() - started);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { rps: latencies.length / ((performance.now() - started) / 1000), latencies, errors };
}

/** A request whose answer is read to the end; resolves with its status and its body as text. */
export function request(
  /** https' options include http's, and the TLS ones (`ca`) a request to an https URL may need. */
  options: https.RequestOptions & { url?: string },
  body?: string,
  transport: typeof http | typeof https = http,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = options.url !== undefined ? transport.request(options.url, options) : transport.request(options);
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
