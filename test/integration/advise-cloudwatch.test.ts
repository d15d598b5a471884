/**
 * `flowtrail advise` and `policy test` reading records from CloudWatch Logs
 * (moto_server, the real AWS SDK), as `--cluster` (the default log group
 * name), `--log-group` and `-c CONFIG` (cluster, CloudWatch settings and the
 * endpoints file from the agent config): the same answer as from a file.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  PutLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { STARS_DEFAULT_DENY_YAML } from '../../src/demo/stars.js';
import { encodeRecord } from '../../src/format/codec.js';
import { awsTestConfig, type Moto, startMoto } from '../../src/sim/moto.js';
import { runCli } from '../harness/cli.js';
import { skipMoto } from '../harness/env.js';
import { starsEndpointsYaml, starsRecords } from '../helpers/stars-policy.js';

describe.skipIf(skipMoto)('advise and policy test from CloudWatch', () => {
  let moto: Moto;
  const dir = mkdtempSync(join(tmpdir(), 'ft-advise-cw-'));
  const file = join(dir, 'flows.log');
  const endpoints = join(dir, 'endpoints.yaml');
  // Recent enough for the default --since 24h; records without labels.
  const records = starsRecords({
    labels: false,
    kind: 1,
    at: Math.floor(Date.now() / 1000) - 3_000,
  });
  beforeAll(async () => {
    writeFileSync(file, `${records.map((r) => encodeRecord(r)).join('\n')}\n`);
    writeFileSync(endpoints, starsEndpointsYaml());
    moto = await startMoto();
    const logs = new CloudWatchLogsClient(awsTestConfig(moto.endpoint));
    const logGroupName = 'flowtrail-flowlogs-stars';
    await logs.send(new CreateLogGroupCommand({ logGroupName }));
    await logs.send(new CreateLogStreamCommand({ logGroupName, logStreamName: 'node-1_Flowlogs' }));
    await logs.send(
      new PutLogEventsCommand({
        logGroupName,
        logStreamName: 'node-1_Flowlogs',
        logEvents: [...records]
          .sort((a, b) => a.endTime - b.endTime)
          .map((r) => ({ timestamp: r.endTime * 1000, message: encodeRecord(r) })),
      }),
    );
  });
  afterAll(async () => {
    await moto?.stop();
  });

  it('--cluster and -c read the log group and give the file answer', async () => {
    const fromFile = await runCli(['advise', '--file', file, '--endpoints', endpoints, '--json']);
    expect(fromFile.status).toBe(0);
    const byCluster = await runCli([
      'advise',
      '--cluster',
      'stars',
      '--region',
      'us-east-1',
      '--endpoint',
      moto.endpoint,
      '--endpoints',
      endpoints,
      '--json',
    ]);
    expect(byCluster.stderr).toBe('');
    expect(byCluster.status).toBe(0);
    const a = JSON.parse(fromFile.stdout);
    const b = JSON.parse(byCluster.stdout);
    expect(b.source).toBe('log group flowtrail-flowlogs-stars');
    expect(b.policies).toEqual(a.policies);
    expect(b.replay).toEqual(a.replay);
    expect(b.replay.records).toBe(records.length);

    const config = join(dir, 'flowtrail.yaml');
    writeFileSync(
      config,
      stringify({
        clusterName: 'stars',
        nodeName: 'node-1',
        endpoints: { file: endpoints },
        sinks: { cloudwatch: { region: 'us-east-1', endpoint: moto.endpoint } },
      }),
    );
    const byConfig = await runCli(['advise', '-c', config, '--json']);
    expect(byConfig.status).toBe(0);
    expect(JSON.parse(byConfig.stdout).policies).toEqual(a.policies);
  });

  it('policy test --log-group: the stars default deny newly denies every allowed record', async () => {
    const policies = join(dir, 'deny.yaml');
    writeFileSync(policies, STARS_DEFAULT_DENY_YAML);
    const r = await runCli([
      'policy',
      'test',
      '--policies',
      policies,
      '--log-group',
      'flowtrail-flowlogs-stars',
      '--region',
      'us-east-1',
      '--endpoint',
      moto.endpoint,
      '--endpoints',
      endpoints,
      '--json',
    ]);
    expect(r.status).toBe(1);
    const diff = JSON.parse(r.stdout);
    expect(diff.summary.newlyDenied).toBe(records.filter((x) => x.action === 'allow').length);
    expect(diff.summary.newlyAllowed).toBe(0);
  });
});
