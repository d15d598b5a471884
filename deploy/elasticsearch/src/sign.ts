/**
 * SigV4 for Amazon OpenSearch Service (service `es`) with
 * @smithy/signature-v4 and node:crypto, credentials from the Lambda
 * environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

type SourceData = string | ArrayBuffer | ArrayBufferView;

class NodeSha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(secret));
  }
  update(data: SourceData): void {
    this.h.update(toBuffer(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {}
}

function toBuffer(d: SourceData): Buffer {
  if (typeof d === 'string') return Buffer.from(d, 'utf8');
  if (ArrayBuffer.isView(d)) return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  return Buffer.from(d);
}

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export function credentialsFromEnv(env: NodeJS.ProcessEnv): Credentials {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new Error('ES_SIGV4 is on but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set');
  }
  return {
    accessKeyId,
    secretAccessKey,
    ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
  };
}

/** Headers (including authorization) for one signed request. */
export async function signRequest(opts: {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: string;
  region: string;
  credentials: Credentials;
  service?: string;
}): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    service: opts.service ?? 'es',
    region: opts.region,
    credentials: opts.credentials,
    sha256: NodeSha256,
  });
  const query: Record<string, string> = {};
  for (const [k, v] of opts.url.searchParams) query[k] = v;
  const signed = await signer.sign({
    method: opts.method,
    protocol: opts.url.protocol,
    hostname: opts.url.hostname,
    ...(opts.url.port ? { port: Number(opts.url.port) } : {}),
    path: opts.url.pathname,
    query,
    headers: { ...opts.headers, host: opts.url.host },
    body: opts.body,
  });
  return signed.headers as Record<string, string>;
}
