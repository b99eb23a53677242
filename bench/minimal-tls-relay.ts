import https from 'node:https';
import { readFileSync } from 'node:fs';

/**
 * The floor any Node.js proxy pays in front of the apiserver: node:https in, node:https out through a keep-alive
 * agent, the client's headers passed as they are (repeated ones too, such as two `Impersonate-Group` lines) with a
 * bearer token added. No authentication, no checks. A response without a length (a watch) has its head sent at
 * once, as any proxy of watches must.
 * `node dist/bench/minimal-tls-relay.js <listen port> <upstream https URL>`, with ZGW_RELAY_CERT, ZGW_RELAY_KEY (the
 * listener), ZGW_RELAY_UPSTREAM_CA and ZGW_RELAY_BEARER (the upstream) in the environment.
 */
const [listenPort, upstream] = [Number(process.argv[2]), new URL(process.argv[3] ?? '')];
const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`minimal-tls-relay: ${name} is not set`);
  return value;
};
const authorization = `Bearer ${env('ZGW_RELAY_BEARER')}`;
const agent = new https.Agent({ keepAlive: true, maxSockets: Infinity, ca: readFileSync(env('ZGW_RELAY_UPSTREAM_CA')) });

const server = https.createServer({ cert: readFileSync(env('ZGW_RELAY_CERT')), key: readFileSync(env('ZGW_RELAY_KEY')) }, (req, res) => {
  const out = https.request(
    {
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: [...req.rawHeaders, 'Authorization', authorization],
      agent,
    },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (up.headers['content-length'] === undefined) res.flushHeaders();
      up.pipe(res);
    },
  );
  out.on('error', () => res.destroy());
  // A client that leaves before the end (a watch) closes the upstream request too.
  res.on('close', () => {
    if (!res.writableFinished) out.destroy();
  });
  req.pipe(out);
});
server.keepAliveTimeout = 65_000;
server.listen(listenPort, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`);
});
// An orderly exit on SIGTERM, so `node --cpu-prof` can write its profile.
process.on('SIGTERM', () => process.exit(0));
