/**
 * The agent's HTTP endpoints: /healthz (liveness), /readyz (readiness, JSON
 * with the reasons when not ready, 503), /metrics (Prometheus text).
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { FlowtrailError } from '../util/errors.js';
import type { HealthReport } from './health.js';

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535) {
    throw new FlowtrailError(
      'ERR_LISTEN',
      `http.listen: expected host:port, got ${JSON.stringify(listen)}`,
      { listen },
    );
  }
  return { host: m[1]!, port };
}

export async function startHttpServer(opts: {
  listen: string;
  registry: Registry;
  health: () => HealthReport;
}): Promise<{ address: string; close(): Promise<void> }> {
  const { host, port } = parseListen(opts.listen);
  const server: Server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (url === '/readyz') {
      const h = opts.health();
      res
        .writeHead(h.healthy ? 200 : 503, { 'content-type': 'application/json' })
        .end(`${JSON.stringify({ ready: h.healthy, reasons: h.reasons })}\n`);
    } else if (url === '/metrics') {
      opts.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(`${err.message}\n`),
      );
    } else {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end('not found: try /healthz, /readyz or /metrics\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new FlowtrailError(
          'ERR_LISTEN',
          `http.listen ${opts.listen}: cannot listen (${err.code ?? err.message})`,
          {
            listen: opts.listen,
            errno: err.code,
          },
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const address =
    typeof addr === 'object' && addr
      ? `${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`
      : opts.listen;
  return {
    address,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
