import http from 'node:http';

/**
 * The fast upstream of scenario 2: answers every request with the same 1 KB JSON, so what is measured through a
 * proxy is the proxy's own cost. Run as its own process: `node dist/bench/fast-upstream.js <port>`.
 */
const item = { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'bench-small', namespace: 'os-alpha' }, data: {} as Record<string, string> };
for (let i = 0; item.data && JSON.stringify(item).length < 1000; i += 1) item.data[`k${i}`] = 'v'.repeat(16);
const body = Buffer.from(JSON.stringify(item).slice(0, 1024).padEnd(1024, ' '));

const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`);
});
