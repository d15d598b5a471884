/**
 * The OpenSearch function's SigV4 signature (@smithy/signature-v4 with
 * @smithy/hash-node) checked against an independent signer: botocore, which
 * the machine's moto brings, signs the same request at the same instant
 * with the same credentials, and the two Authorization headers must agree.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { signRequest } from '../../deploy/elasticsearch/src/sign.js';
import { underCI } from '../harness/env.js';

const BOTOCORE = `
import json, sys, datetime
from unittest import mock
import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
q = json.load(sys.stdin)
at = datetime.datetime(2015, 8, 30, 12, 36, 0)
with mock.patch.object(botocore.auth, 'get_current_datetime', lambda: at):
    r = AWSRequest(method=q['method'], url=q['url'], data=q['body'].encode(), headers=q['headers'])
    SigV4Auth(Credentials(q['key'], q['secret'], q.get('token')), q['service'], q['region']).add_auth(r)
print(json.dumps({k.lower(): v for k, v in r.headers.items()}))
`;

const hasBotocore =
  spawnSync('python3', ['-c', 'import botocore'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasBotocore && !underCI)('OpenSearch function SigV4 signing', () => {
  it('signs a _bulk request exactly as botocore does (same time, credentials, headers)', async () => {
    const url = new URL(
      'https://search-flows-abc123.eu-west-1.es.amazonaws.com/_bulk?refresh=false',
    );
    const body = '{"index":{"_index":"flowtrail-2015.08.30","_id":"1"}}\n{"action":"deny"}\n';
    const credentials = {
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      sessionToken: 'session-token-example',
    };
    const ours = await signRequest({
      url,
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body,
      region: 'eu-west-1',
      credentials,
      signingDate: new Date(Date.UTC(2015, 7, 30, 12, 36, 0)),
    });
    expect(ours.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20150830\/eu-west-1\/es\/aws4_request, /,
    );
    // botocore signs every header it is given: give it the ones ours signed (but authorization).
    const signed = /SignedHeaders=([^,]+)/.exec(ours.authorization!)![1]!.split(';');
    const headers = Object.fromEntries(
      signed.filter((h) => h !== 'host').map((h) => [h, ours[h] ?? ours[h.toLowerCase()]]),
    );
    const py = spawnSync('python3', ['-c', BOTOCORE], {
      input: JSON.stringify({
        method: 'POST',
        url: url.href,
        body,
        headers,
        key: credentials.accessKeyId,
        secret: credentials.secretAccessKey,
        token: credentials.sessionToken,
        service: 'es',
        region: 'eu-west-1',
      }),
      encoding: 'utf8',
    });
    expect(py.status, py.stderr).toBe(0);
    const theirs = JSON.parse(py.stdout) as Record<string, string>;
    expect(ours.authorization).toBe(theirs.authorization);
    expect(ours['x-amz-date']).toBe('20150830T123600Z');
  });
});

describe('the OpenSearch function bundle (esbuild)', () => {
  it('carries the signer: no @smithy import left, and it signs the _bulk requests it sends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ft-es-bundle-'));
    try {
      const outfile = join(dir, 'index.mjs');
      // The options of deploy/elasticsearch/build.mjs (npm run build:es-function).
      await build({
        entryPoints: [
          new URL('../../deploy/elasticsearch/src/handler.ts', import.meta.url).pathname,
        ],
        outfile,
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node24',
        logLevel: 'silent',
      });
      expect(readFileSync(outfile, 'utf8')).not.toMatch(/from\s*["']@smithy\//);
      const bundle = (await import(
        outfile
      )) as typeof import('../../deploy/elasticsearch/src/handler.js');
      const sent: { url: string; headers: Record<string, string>; body: string }[] = [];
      const fakeFetch = (async (url: URL, init: RequestInit) => {
        const body = String(init.body);
        sent.push({ url: String(url), headers: init.headers as Record<string, string>, body });
        // The _bulk answer: every action line indexed.
        const actions = body.split('\n').filter((l, i) => i % 2 === 0 && l !== '');
        const items = actions.map((a) => ({
          index: { _id: JSON.parse(a).index._id, status: 201 },
        }));
        return new Response(JSON.stringify({ errors: false, items }), { status: 200 });
      }) as typeof fetch;
      const handler = bundle.createHandler({
        endpoint: 'https://search-flows-abc123.eu-west-1.es.amazonaws.com',
        sigv4: { region: 'eu-west-1' },
        env: { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret' },
        fetch: fakeFetch,
        log: () => {},
      });
      const line =
        '1764000000 1764000300 wep shop web-* - wep shop api-* - - - 6 - 8080 1 1 1 src 10 12 1000 9000 allow';
      const data = gzipSync(
        JSON.stringify({
          messageType: 'DATA_MESSAGE',
          owner: '123456789012',
          logGroup: 'flowtrail-flowlogs-prod',
          logStream: 'node-1_Flowlogs',
          subscriptionFilters: ['flowtrail-es'],
          logEvents: [{ id: '3719', timestamp: 1_764_000_300_000, message: line }],
        }),
      ).toString('base64');
      const result = await handler({ awslogs: { data } });
      expect(result).toMatchObject({ received: 1, indexed: 1 });
      expect(sent).toHaveLength(1);
      expect(sent[0]!.headers.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/es\/aws4_request, SignedHeaders=[^,]*host[^,]*, Signature=[0-9a-f]{64}$/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
