/**
 * The CloudWatch Logs sink under the least-privilege split of
 * deploy/aws/iam-policy.json (run-time) and iam-setup-policy.json (setup):
 * moto behind the fault proxy, which answers AccessDeniedException, worded
 * as IAM words it (role ARN and account id in the message), for the
 * operations a policy leaves out.
 *
 * - With the run-time policy only, on a group setup created, records arrive:
 *   the setup-time calls the agent makes at start are skipped, not fatal.
 * - A missing group the role may not create is one clear, slow-retried
 *   failure, not a loop.
 * - /readyz (unauthenticated) names the error, never the ARN or account;
 *   the agent log has the whole message.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  GetLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateHealth } from '../../src/metrics/health.js';
import { startHttpServer } from '../../src/metrics/http-server.js';
import { awsTestConfig, type Moto, startMoto } from '../../src/sim/moto.js';
import {
  createCloudWatchLogsSink,
  SETUP_TIME_ACTIONS,
} from '../../src/sinks/cloudwatch-logs/sink.js';
import type { Logger } from '../../src/util/log.js';
import { DENIED_ACCOUNT, FaultProxy } from '../../tooling/sim/fault-proxy.js';
import { skipMoto } from '../harness/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A pino logger writing JSON lines into an array (what the agent log would say). */
function capturingLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => lines.push(s) });
  return { logger, text: () => lines.join('') };
}

const setupOperations = SETUP_TIME_ACTIONS.map((a) => a.replace(/^logs:/, ''));

describe.skipIf(skipMoto)(
  'CloudWatch Logs with least-privilege policies (moto + fault proxy)',
  () => {
    let moto: Moto;
    let proxy: FaultProxy;
    let logs: CloudWatchLogsClient;

    beforeAll(async () => {
      moto = await startMoto();
      proxy = await FaultProxy.start(moto.endpoint);
      logs = new CloudWatchLogsClient(awsTestConfig(moto.endpoint));
    });
    afterAll(async () => {
      logs?.destroy();
      await proxy?.stop();
      await moto?.stop();
    });

    function sink(group: string, logger: Logger) {
      return createCloudWatchLogsSink({
        region: 'us-east-1',
        endpoint: proxy.endpoint,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
        logGroupName: group,
        logStreamName: 'node-1_Flowlogs',
        retentionDays: 7,
        tags: { 'flowtrail:cluster': 'ci' },
        spoolDir: mkdtempSync(join(tmpdir(), 'ft-perm-')),
        spoolMaxBytes: 16 * 1024 * 1024,
        logger,
        lingerMs: 20,
        fatalRetryMs: 300,
        random: () => 0.5,
      });
    }
    const lines = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ line: `r${i}`, timestampMs: Date.now() }));

    it('with the run-time policy only, records reach a group setup created; setup-time calls are skipped with one warning', async () => {
      await logs.send(new CreateLogGroupCommand({ logGroupName: 'ft-runtime-only' }));
      proxy.set('pass');
      proxy.denyOperations(setupOperations);
      const { logger, text } = capturingLogger();
      const s = sink('ft-runtime-only', logger);
      try {
        await s.start();
        await s.write(lines(12));
        await until(() => s.stats.recordsSent === 12, 20_000, 'delivery');
        expect(s.health()).toEqual({ healthy: true });
      } finally {
        await s.close();
        proxy.denyOperations([]);
      }
      const got = await logs.send(
        new GetLogEventsCommand({
          logGroupName: 'ft-runtime-only',
          logStreamName: 'node-1_Flowlogs',
          startFromHead: true,
        }),
      );
      expect(got.events?.map((e) => e.message)).toEqual(lines(12).map((l) => l.line));
      const denied = proxy.requests.filter((r) => r.fault === 'deny').map((r) => r.operation);
      expect(new Set(denied)).toEqual(new Set(['CreateLogGroup', 'PutRetentionPolicy']));
      expect(text().match(/setup-time actions not allowed/g)).toHaveLength(1);
    }, 60_000);

    it('a missing group the role may not create: one clear reason naming flowtrail setup, retried slowly', async () => {
      proxy.set('pass');
      proxy.denyOperations(setupOperations);
      const { logger } = capturingLogger();
      const s = sink('ft-never-created', logger);
      try {
        await s.start();
        await s.write(lines(3));
        await until(() => !s.health().healthy, 10_000, 'unhealthy');
        expect(s.health().reason).toMatch(
          /log group ft-never-created does not exist and this role may not create it: run flowtrail setup/,
        );
        const before = proxy.requests.length;
        await sleep(1_500);
        expect(proxy.requests.length - before).toBeLessThan(20);
        expect(s.spool!.stats.depth).toBe(3);
      } finally {
        await s.close();
        proxy.denyOperations([]);
      }
    }, 60_000);

    it('/readyz names the refusal but not the role ARN or account id; the log has the whole message', async () => {
      proxy.set('deny');
      const { logger, text } = capturingLogger();
      const s = sink('ft-readyz', logger);
      const http = await startHttpServer({
        listen: '127.0.0.1:0',
        registry: new Registry(),
        health: () =>
          evaluateHealth(
            {
              captureOpen: () => true,
              lastDumpOkMs: () => Date.now(),
              endpointsSynced: () => true,
              sinks: () => [{ name: s.name, ...s.health() }],
            },
            Date.now(),
            60_000,
          ),
      });
      try {
        await s.start();
        await s.write(lines(2));
        await until(() => !s.health().healthy, 10_000, 'unhealthy');
        const res = await fetch(`http://${http.address}/readyz`);
        const body = await res.text();
        expect(res.status).toBe(503);
        expect(body).toMatch(/AccessDeniedException/);
        expect(body).not.toContain(DENIED_ACCOUNT);
        expect(body).not.toMatch(/arn:aws/);
        expect(text()).toContain(`arn:aws:sts::${DENIED_ACCOUNT}:assumed-role/flowtrail-agent`);
      } finally {
        proxy.set('pass');
        await s.close();
        await http.close();
      }
    }, 60_000);
  },
);
