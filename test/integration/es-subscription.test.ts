/**
 * The Elasticsearch/OpenSearch subscription function on REAL subscription
 * payloads: moto delivers a log group's events through a subscription filter
 * into a Kinesis stream as the gzip JSON DATA_MESSAGE CloudWatch Logs sends;
 * those records are fed to the handler. No Elasticsearch is available on
 * this machine, so the `_bulk` side is a local node:http server speaking
 * that protocol (test/helpers/fake-es.ts) with per-item errors injected.
 */
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  FilterLogEventsCommand,
  PutLogEventsCommand,
  PutSubscriptionFilterCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import {
  CreateStreamCommand,
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
} from '@aws-sdk/client-kinesis';
// The Kinesis client defaults to an HTTP/2 handler, which moto (HTTP/1.1) answers with
// "Protocol error"; an HTTP/1.1 handler talks to it.
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { CloudWatchLogsEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createHandler,
  type HandlerOptions,
  IndexingError,
} from '../../deploy/elasticsearch/src/handler.js';
import { RECORD_FIELDS } from '../../src/format/record.js';
import { awsTestConfig, type Moto, startMoto } from '../../src/sim/moto.js';
import { skipMoto } from '../harness/env.js';
import { type FakeEs, startFakeEs } from '../helpers/fake-es.js';

const GROUP = 'flowtrail-flowlogs-es';
const STREAM = 'node-1_Flowlogs';
// Two days: records are indexed by their endTime's UTC date.
const DAY2 = Math.floor(Date.now() / 1000 / 86_400) * 86_400 - 86_400; // yesterday 00:00 UTC
const T1 = DAY2 - 200; // the day before, 23:56:40
const T2 = DAY2 + 100; // yesterday 00:01:40
const day = (t: number) => new Date(t * 1000).toISOString().slice(0, 10).replaceAll('-', '.');

const GOOD = [
  `${T1 - 300} ${T1} wep prod api-7d9-x2x7q [app=api,tier=web] net - pub - 10.244.1.3 203.0.113.9 6 41234 443 1 1 1 src 12 10 1500 9000 allow`,
  `${T1 - 300} ${T1} wep dev client-* - wep prod api-7d9-* - - - 6 - 8080 3 2 1 dst 30 25 4000 3000 allow`,
  `${T2 - 300} ${T2} wep dev client-* - wep prod db-0 - - 10.244.2.9 6 - 5432 1 1 0 dst 7 0 420 0 deny`,
  `${T2 - 300} ${T2} wep prod api-* - wep kube-system kube-dns-* - - - 17 - 53 4 4 4 src 4 4 300 500 allow`,
  // The 27-field variant (flowLogs.includePolicies): aggregated names and the deciding policies.
  `${T2 - 300} ${T2} wep dev client-7c9-x2x7q - wep prod db-0 - 10.244.1.7 10.244.2.9 6 - 5432 1 1 0 dst 7 0 420 0 deny client-7c9-* db-* default.default-deny|prod.db-ingress`,
  `${T2 - 300} ${T2} wep prod api-* - net - pub - - - 6 - 443 2 2 2 src 9 8 900 1200 allow api-* pub -`,
];
const BAD = [
  'not a flow record',
  `${T2} ${T2} wep a b - wep c d - - - 6 - 80 1 1 1 sideways 1 1 1 1 allow`,
];

let moto: Moto;
let es: FakeEs;
let payloads: string[] = [];
let eventIds: Map<string, string>; // message → CloudWatch event id

async function kinesisPayloads(kinesis: KinesisClient, stream: string): Promise<string[]> {
  const d = await kinesis.send(new DescribeStreamCommand({ StreamName: stream }));
  const out: string[] = [];
  for (const shard of d.StreamDescription?.Shards ?? []) {
    let it = (
      await kinesis.send(
        new GetShardIteratorCommand({
          StreamName: stream,
          ShardId: shard.ShardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      )
    ).ShardIterator;
    for (let i = 0; it && i < 20; i++) {
      const r = await kinesis.send(new GetRecordsCommand({ ShardIterator: it }));
      for (const rec of r.Records ?? []) out.push(Buffer.from(rec.Data!).toString('base64'));
      if ((r.Records ?? []).length === 0) break;
      it = r.NextShardIterator;
    }
  }
  return out;
}

const event = (data: string): CloudWatchLogsEvent => ({ awslogs: { data } });
const logs: Record<string, unknown>[] = [];
const options = (extra: Partial<HandlerOptions> = {}): HandlerOptions => ({
  endpoint: es.endpoint,
  log: (e) => logs.push(e),
  retry: { baseDelayMs: 1, maxDelayMs: 5, maxAttempts: 4 },
  ...extra,
});
const allDocs = () => new Map([...es.indices.values()].flatMap((m) => [...m]));

describe.skipIf(skipMoto)(
  'Elasticsearch subscription function on moto subscription payloads',
  () => {
    beforeAll(async () => {
      moto = await startMoto();
      const cfg = awsTestConfig(moto.endpoint);
      const cw = new CloudWatchLogsClient(cfg);
      const kinesis = new KinesisClient({ ...cfg, requestHandler: new NodeHttpHandler() });
      await kinesis.send(new CreateStreamCommand({ StreamName: 'flowtrail-es', ShardCount: 1 }));
      const arn = (await kinesis.send(new DescribeStreamCommand({ StreamName: 'flowtrail-es' })))
        .StreamDescription!.StreamARN!;
      await cw.send(new CreateLogGroupCommand({ logGroupName: GROUP }));
      await cw.send(new CreateLogStreamCommand({ logGroupName: GROUP, logStreamName: STREAM }));
      await cw.send(
        new PutSubscriptionFilterCommand({
          logGroupName: GROUP,
          filterName: 'to-es',
          filterPattern: '',
          destinationArn: arn,
          roleArn: 'arn:aws:iam::123456789012:role/cwl-to-kinesis',
        }),
      );
      const lines = [GOOD[0]!, GOOD[1]!, BAD[0]!, GOOD[2]!, BAD[1]!, GOOD[3]!, GOOD[4]!, GOOD[5]!];
      await cw.send(
        new PutLogEventsCommand({
          logGroupName: GROUP,
          logStreamName: STREAM,
          logEvents: lines.map((message) => ({
            timestamp: Number(message.split(' ')[1] ?? T2) * 1000 || T2 * 1000,
            message,
          })),
        }),
      );
      payloads = await kinesisPayloads(kinesis, 'flowtrail-es');
      const filtered = await cw.send(new FilterLogEventsCommand({ logGroupName: GROUP }));
      eventIds = new Map((filtered.events ?? []).map((e) => [e.message!, e.eventId!]));
      cw.destroy();
      kinesis.destroy();
      es = await startFakeEs();
    }, 60_000);

    afterAll(async () => {
      await es?.stop();
      await moto?.stop();
    });

    beforeEach(() => {
      es.reset();
      logs.length = 0;
    });

    it('reads real gzip DATA_MESSAGE payloads from the Kinesis destination', () => {
      expect(payloads.length).toBeGreaterThanOrEqual(1);
      expect(eventIds.size).toBe(GOOD.length + BAD.length);
    });

    it('indexes one typed document per record, id = CloudWatch event id, daily index by endTime', async () => {
      const handler = createHandler(options());
      let result = { indexed: 0, deadLetter: 0 };
      for (const p of payloads) {
        const r = await handler(event(p));
        result = {
          indexed: result.indexed + r.indexed,
          deadLetter: result.deadLetter + r.deadLetter,
        };
      }
      expect(result).toEqual({ indexed: GOOD.length, deadLetter: BAD.length });
      expect([...es.indices.keys()].sort()).toEqual(
        [`flowtrail-${day(T1)}`, `flowtrail-${day(T2)}`].sort(),
      );
      expect(es.indices.get(`flowtrail-${day(T1)}`)!.size).toBe(2);
      const docs = allDocs();
      expect([...docs.keys()].sort()).toEqual(GOOD.map((m) => eventIds.get(m)!).sort());
      expect(docs.get(eventIds.get(GOOD[0]!)!)).toEqual({
        '@timestamp': new Date(T1 * 1000).toISOString(),
        startTime: new Date((T1 - 300) * 1000).toISOString(),
        endTime: new Date(T1 * 1000).toISOString(),
        srcType: 'wep',
        srcNamespace: 'prod',
        srcName: 'api-7d9-x2x7q',
        srcLabels: ['app=api', 'tier=web'],
        dstType: 'net',
        dstName: 'pub',
        srcIP: '10.244.1.3',
        dstIP: '203.0.113.9',
        proto: 6,
        srcPort: 41234,
        dstPort: 443,
        numFlows: 1,
        numFlowsStarted: 1,
        numFlowsCompleted: 1,
        reporter: 'src',
        packetsIn: 12,
        packetsOut: 10,
        bytesIn: 1500,
        bytesOut: 9000,
        action: 'allow',
        logGroup: GROUP,
        logStream: STREAM,
      });
      // '-' fields are absent, not empty strings.
      const aggregated = docs.get(eventIds.get(GOOD[1]!)!) as Record<string, unknown>;
      for (const f of ['srcIP', 'dstIP', 'srcPort', 'srcLabels', 'dstLabels'])
        expect(aggregated).not.toHaveProperty(f);
      // A 27-field record: its names aggregated and its policies as a keyword array.
      expect(docs.get(eventIds.get(GOOD[4]!)!)).toEqual({
        '@timestamp': new Date(T2 * 1000).toISOString(),
        startTime: new Date((T2 - 300) * 1000).toISOString(),
        endTime: new Date(T2 * 1000).toISOString(),
        srcType: 'wep',
        srcNamespace: 'dev',
        srcName: 'client-7c9-x2x7q',
        dstType: 'wep',
        dstNamespace: 'prod',
        dstName: 'db-0',
        srcIP: '10.244.1.7',
        dstIP: '10.244.2.9',
        proto: 6,
        dstPort: 5432,
        numFlows: 1,
        numFlowsStarted: 1,
        numFlowsCompleted: 0,
        reporter: 'dst',
        packetsIn: 7,
        packetsOut: 0,
        bytesIn: 420,
        bytesOut: 0,
        action: 'deny',
        srcNameAggr: 'client-7c9-*',
        dstNameAggr: 'db-*',
        policies: ['default.default-deny', 'prod.db-ingress'],
        logGroup: GROUP,
        logStream: STREAM,
      });
      // No policy ('-'): no policies field, as for a 24-field record.
      const noPolicy = docs.get(eventIds.get(GOOD[5]!)!) as Record<string, unknown>;
      expect(noPolicy).toMatchObject({ srcNameAggr: 'api-*', dstNameAggr: 'pub', action: 'allow' });
      expect(noPolicy).not.toHaveProperty('policies');
      for (const m of GOOD.slice(0, 4))
        expect(docs.get(eventIds.get(m)!)).not.toHaveProperty('srcNameAggr');
      // Unparsable events are logged with their ids (dead letter), never indexed.
      const dead = logs.filter((l) => String(l.msg).startsWith('dead letter'));
      expect(dead.map((l) => l.id).sort()).toEqual(BAD.map((m) => eventIds.get(m)!).sort());
    });

    it('a redelivered payload overwrites the same documents instead of duplicating them', async () => {
      const handler = createHandler(options());
      for (const p of payloads) await handler(event(p));
      for (const p of payloads) await handler(event(p));
      expect(es.count()).toBe(GOOD.length);
    });

    it('retries items the bulk response marks 429 or 503 and indexes them all', async () => {
      const flaky = new Set([eventIds.get(GOOD[0]!)!, eventIds.get(GOOD[2]!)!]);
      es.failWith = (id, attempt) =>
        flaky.has(id) && attempt <= 2 ? (attempt === 1 ? 429 : 503) : undefined;
      const handler = createHandler(options());
      let retries = 0;
      for (const p of payloads) {
        const r = await handler(event(p));
        retries += r.retries;
      }
      expect(es.count()).toBe(GOOD.length);
      expect(retries).toBe(4); // two items, two retries each
      // Retries carry only the failed items: each flaky id sent 3 times, the others once.
      const sends = new Map<string, number>();
      for (const id of es.requests.flatMap((r) => r.ids)) sends.set(id, (sends.get(id) ?? 0) + 1);
      for (const m of GOOD) {
        const id = eventIds.get(m)!;
        expect(sends.get(id), m).toBe(flaky.has(id) ? 3 : 1);
      }
    });

    it('fails the invocation with counts when an item keeps failing, after indexing the rest', async () => {
      const stuck = eventIds.get(GOOD[3]!)!;
      es.failWith = (id) => (id === stuck ? 503 : undefined);
      const handler = createHandler(options());
      const errors: IndexingError[] = [];
      for (const p of payloads) {
        try {
          await handler(event(p));
        } catch (err) {
          errors.push(err as IndexingError);
        }
      }
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(IndexingError);
      expect(errors[0]!.code).toBe('ERR_ES_INDEXING');
      expect(errors[0]!.failures).toEqual([expect.objectContaining({ id: stuck, status: 503 })]);
      expect(errors[0]!.counts.failed).toBe(1);
      expect(es.count()).toBe(GOOD.length - 1);
      // Sent once plus three retries (maxAttempts 4).
      expect(es.requests.flatMap((r) => r.ids).filter((id) => id === stuck)).toHaveLength(4);
    });

    it('does not retry an item rejected as a bad document (400) and fails the invocation', async () => {
      const bad = eventIds.get(GOOD[1]!)!;
      es.failWith = (id) => (id === bad ? 400 : undefined);
      const handler = createHandler(options());
      const outcome = await Promise.allSettled(payloads.map((p) => handler(event(p))));
      const rejected = outcome.filter((o) => o.status === 'rejected');
      expect(rejected).toHaveLength(1);
      expect(es.requests.flatMap((r) => r.ids).filter((id) => id === bad)).toHaveLength(1);
      expect(String((rejected[0] as PromiseRejectedResult).reason.message)).toContain(
        'mapper_parsing_exception',
      );
    });

    it('retries the whole request on HTTP 429 and signs nothing without SigV4; basic auth when configured', async () => {
      es.failRequest = 429;
      const handler = createHandler(options({ basicAuth: { username: 'ft', password: 's3cret' } }));
      for (const p of payloads) await handler(event(p));
      expect(es.count()).toBe(GOOD.length);
      expect(es.requests[0]!.headers.authorization).toBe(
        `Basic ${Buffer.from('ft:s3cret').toString('base64')}`,
      );
    });

    it('signs with SigV4 (service es) when configured', async () => {
      const handler = createHandler(
        options({
          sigv4: { region: 'eu-west-1' },
          env: {
            AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
            AWS_SECRET_ACCESS_KEY: 'secret',
            AWS_SESSION_TOKEN: 'tok',
          },
        }),
      );
      for (const p of payloads) await handler(event(p));
      const h = es.requests[0]!.headers;
      expect(h.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/es\/aws4_request, SignedHeaders=[^,]*host[^,]*, Signature=[0-9a-f]{64}$/,
      );
      expect(h['x-amz-security-token']).toBe('tok');
      expect(h['x-amz-content-sha256'] ?? h['x-amz-date']).toBeTruthy();
    });
  },
);

describe('Elasticsearch subscription function: payload edge cases and shipped files', () => {
  it('ignores a CONTROL_MESSAGE without calling Elasticsearch', async () => {
    const data = gzipSync(
      JSON.stringify({
        messageType: 'CONTROL_MESSAGE',
        owner: 'CloudwatchLogs',
        logGroup: '',
        logStream: '',
        subscriptionFilters: [],
        logEvents: [
          { id: '', timestamp: 0, message: 'CWL CONTROL MESSAGE: Checking health of destination' },
        ],
      }),
    ).toString('base64');
    const handler = createHandler({ endpoint: 'http://127.0.0.1:1', log: () => {} });
    expect(await handler({ awslogs: { data } })).toEqual({
      received: 0,
      indexed: 0,
      deadLetter: 0,
      retries: 0,
      control: true,
    });
  });

  it('logs a loss event from a <node>_Events stream instead of dead-lettering or indexing it', async () => {
    const loss = {
      event: 'loss',
      cluster: 'ci',
      node: 'ip-10-0-0-1',
      kind: 'ConntrackOverrun',
      count: 12,
      windowStartMs: 1,
      windowEndMs: 2,
    };
    const data = gzipSync(
      JSON.stringify({
        messageType: 'DATA_MESSAGE',
        owner: '123456789012',
        logGroup: 'flowtrail-flowlogs-ci',
        logStream: 'ip-10-0-0-1_Events',
        subscriptionFilters: ['es'],
        logEvents: [{ id: '1', timestamp: 2, message: JSON.stringify(loss) }],
      }),
    ).toString('base64');
    const logged: Record<string, unknown>[] = [];
    const handler = createHandler({ endpoint: 'http://127.0.0.1:1', log: (l) => logged.push(l) });
    expect(await handler({ awslogs: { data } })).toEqual({
      received: 1,
      indexed: 0,
      deadLetter: 0,
      retries: 0,
      lossEvents: 1,
    });
    expect(logged.find((l) => l.msg === 'node reported data loss')).toMatchObject({
      level: 'warn',
      kind: 'ConntrackOverrun',
      count: 12,
      logStream: 'ip-10-0-0-1_Events',
    });
  });

  it('every document field is mapped in index-template.json with a matching type (dynamic: strict)', () => {
    const template = JSON.parse(
      readFileSync(
        new URL('../../deploy/elasticsearch/index-template.json', import.meta.url),
        'utf8',
      ),
    );
    const props = template.template.mappings.properties as Record<string, { type: string }>;
    expect(template.template.mappings.dynamic).toBe('strict');
    const expected: Record<string, string> = {
      '@timestamp': 'date',
      startTime: 'date',
      endTime: 'date',
      srcIP: 'ip',
      dstIP: 'ip',
      numFlows: 'long',
      numFlowsStarted: 'long',
      numFlowsCompleted: 'long',
      packetsIn: 'long',
      packetsOut: 'long',
      bytesIn: 'long',
      bytesOut: 'long',
      srcLabels: 'keyword',
      dstLabels: 'keyword',
      srcNamespace: 'keyword',
      dstNamespace: 'keyword',
      action: 'keyword',
      reporter: 'keyword',
      srcPort: 'integer',
      dstPort: 'integer',
      proto: 'short',
      policies: 'keyword',
    };
    for (const [f, type] of Object.entries(expected)) expect(props[f]?.type, f).toBe(type);
    // Every field of the record format (and of the 27-field variant) has a mapping:
    // a field added to the format cannot be forgotten here (strict mapping rejects it).
    for (const f of [...RECORD_FIELDS, 'srcNameAggr', 'dstNameAggr', 'policies']) {
      expect(props[f], f).toBeDefined();
    }
  });

  it('the saved objects parse as ndjson and every reference resolves', () => {
    const objects = readFileSync(
      new URL('../../deploy/elasticsearch/saved-objects.ndjson', import.meta.url),
      'utf8',
    )
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            id: string;
            type: string;
            attributes: { title: string; columns?: string[] };
            references: { id: string; type: string }[];
          },
      );
    // Saved searches show mapped fields only.
    const props = JSON.parse(
      readFileSync(
        new URL('../../deploy/elasticsearch/index-template.json', import.meta.url),
        'utf8',
      ),
    ).template.mappings.properties as Record<string, unknown>;
    for (const o of objects)
      for (const c of o.attributes.columns ?? []) expect(props, `${o.id}: ${c}`).toHaveProperty(c);
    const ids = new Set(objects.map((o) => `${o.type}:${o.id}`));
    for (const o of objects)
      for (const r of o.references) expect(ids.has(`${r.type}:${r.id}`)).toBe(true);
    const titles = objects.map((o) => o.attributes.title);
    expect(titles).toContain('flowtrail: denied flows and the policies that denied them');
    expect(titles).toContain('flowtrail: endpoints with egress to the internet');
    expect(titles).toContain('flowtrail: cross-namespace ingress to prod');
  });
});
