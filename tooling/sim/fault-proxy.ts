/**
 * A fault-injecting HTTP proxy between the AWS SDK and the CloudWatch
 * emulator, for delivery tests: it can throttle (ThrottlingException),
 * fail (500/503), deny (AccessDeniedException), reset connections, stall,
 * or be down altogether, on every request or a fraction of them; and it
 * records every request it saw (operation and parsed body), so tests assert
 * on what flowtrail sends rather than on what the emulator accepts.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';

/** The account and principal a 'deny' answer names (tests check they stay out of /readyz). */
export const DENIED_ACCOUNT = '111122223333';
export const DENIED_PRINCIPAL = `arn:aws:sts::${DENIED_ACCOUNT}:assumed-role/flowtrail-agent/i-0abcd1234ef567890`;

export type FaultMode = 'pass' | 'throttle' | 'fail500' | 'fail503' | 'deny' | 'reset' | 'stall';

export interface SeenRequest {
  operation: string;
  body: Record<string, unknown> | undefined;
  bytes: number;
  fault: FaultMode;
}

export class FaultProxy {
  readonly requests: SeenRequest[] = [];
  private mode: FaultMode = 'pass';
  private probability = 1;
  private stallMs = 20_000;
  private server: Server | undefined;
  private port = 0;
  private readonly sockets = new Set<Socket>();
  private random: () => number = Math.random;
  private readonly denied = new Set<string>();
  private readonly intercepts = new Map<
    string,
    (body: Record<string, unknown> | undefined) => unknown
  >();

  private constructor(private readonly target: URL) {}

  static async start(target: string, options: { random?: () => number } = {}): Promise<FaultProxy> {
    const p = new FaultProxy(new URL(target));
    if (options.random) p.random = options.random;
    await p.listen();
    return p;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Applies `mode` to a fraction of requests (1 = all); 'pass' forwards everything. */
  set(mode: FaultMode, probability = 1, stallMs?: number): void {
    this.mode = mode;
    this.probability = probability;
    if (stallMs !== undefined) this.stallMs = stallMs;
  }

  /** Refuses connections until up() (the port stays reserved for us). */
  async down(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve()));
  }

  async up(): Promise<void> {
    if (!this.server) await this.listen(this.port);
  }

  /**
   * Answers these operations AccessDeniedException whatever the mode, the
   * way IAM does when a policy does not grant them (e.g. the setup-time
   * actions a run-time policy leaves out); [] clears the list.
   */
  denyOperations(operations: readonly string[]): void {
    this.denied.clear();
    for (const o of operations) this.denied.add(o);
  }

  /** Answers an operation itself (e.g. one the emulator does not implement) with the handler's JSON. */
  intercept(
    operation: string,
    handler: (body: Record<string, unknown> | undefined) => unknown,
  ): void {
    this.intercepts.set(operation, handler);
  }

  operations(name?: string): SeenRequest[] {
    return name ? this.requests.filter((r) => r.operation === name) : this.requests;
  }

  private listen(port = 0): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (sock) => {
      this.sockets.add(sock);
      sock.once('close', () => this.sockets.delete(sock));
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        this.port = (server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.includes('.')
        ? target.slice(target.lastIndexOf('.') + 1)
        : (req.url ?? '');
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed =
          body.length > 0
            ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>)
            : undefined;
      } catch {
        parsed = undefined;
      }
      const fault: FaultMode = this.denied.has(operation)
        ? 'deny'
        : this.mode !== 'pass' && this.random() < this.probability
          ? this.mode
          : 'pass';
      this.requests.push({ operation, body: parsed, bytes: body.length, fault });
      const awsError = (status: number, type: string, message: string) => {
        res
          .writeHead(status, {
            'content-type': 'application/x-amz-json-1.1',
            'x-amzn-errortype': type,
          })
          .end(JSON.stringify({ __type: type, message }));
      };
      const own = this.intercepts.get(operation);
      if (own && fault === 'pass') {
        res
          .writeHead(200, { 'content-type': 'application/x-amz-json-1.1' })
          .end(JSON.stringify(own(parsed) ?? {}));
        return;
      }
      switch (fault) {
        case 'throttle':
          return awsError(400, 'ThrottlingException', 'Rate exceeded');
        case 'fail500':
          return awsError(500, 'InternalFailure', 'injected failure');
        case 'fail503':
          return awsError(503, 'ServiceUnavailableException', 'injected unavailability');
        case 'deny':
          // As IAM words it: the caller's ARN and account id are in the message.
          return awsError(
            400,
            'AccessDeniedException',
            `User: ${DENIED_PRINCIPAL} is not authorized to perform: logs:${operation} on resource: arn:aws:logs:us-east-1:${DENIED_ACCOUNT}:log-group:* because no identity-based policy allows the logs:${operation} action`,
          );
        case 'reset':
          req.socket.destroy();
          return;
        case 'stall':
          setTimeout(() => req.socket.destroy(), this.stallMs);
          return;
        default:
          this.forward(req, body, res);
      }
    });
  }

  private forward(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const up = httpRequest(
      {
        host: this.target.hostname,
        port: this.target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: this.target.host },
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => req.socket.destroy());
    up.end(body);
  }

  async stop(): Promise<void> {
    await this.down();
  }
}
