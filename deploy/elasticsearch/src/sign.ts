/**
 * SigV4 for Amazon OpenSearch Service (service `es`) with
 * @smithy/signature-v4 and @smithy/hash-node (the SDK's own SHA-256 and
 * HMAC on node:crypto), credentials from the Lambda environment
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
 */
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';

/** The SDK's hash constructor bound to SHA-256 (a secret makes it an HMAC). */
class Sha256 extends Hash {
  constructor(secret?: ConstructorParameters<typeof Hash>[1]) {
    super('sha256', secret);
  }
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
  /** When the request is signed (default now); tests sign at a fixed time. */
  signingDate?: Date;
}): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    service: opts.service ?? 'es',
    region: opts.region,
    credentials: opts.credentials,
    sha256: Sha256,
  });
  const query: Record<string, string> = {};
  for (const [k, v] of opts.url.searchParams) query[k] = v;
  const signed = await signer.sign(
    {
      method: opts.method,
      protocol: opts.url.protocol,
      hostname: opts.url.hostname,
      ...(opts.url.port ? { port: Number(opts.url.port) } : {}),
      path: opts.url.pathname,
      query,
      headers: { ...opts.headers, host: opts.url.host },
      body: opts.body,
    },
    opts.signingDate ? { signingDate: opts.signingDate } : {},
  );
  return signed.headers as Record<string, string>;
}
