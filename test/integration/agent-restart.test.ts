/**
 * Counts stay exact across a kill -9 of the agent: a connection open across
 * the crash is reported by both agents, and the sum of its records equals
 * the kernel's counters (the second agent starts from the baselines the
 * first saved at its last flush, not from zero).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeRecord } from '../../src/format/codec.js';
import { stopProcess } from '../../src/sim/netns.js';
import { SimNode } from '../../src/sim/simnode.js';
import { openTcpConnection, startTcpServer } from '../../src/sim/traffic.js';
import { conntrackEntries, findEntry } from '../../tooling/sim/truth.js';
import { skipKernel } from '../harness/env.js';
import { waitForLog } from '../helpers/agent.js';

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skipKernel)('agent restart', () => {
  let node: SimNode | undefined;
  afterAll(async () => {
    await node?.destroy();
  });

  it('kill -9 mid-connection: the records of both agents sum to the conntrack counters exactly', async () => {
    node = await SimNode.create({ timeWaitSeconds: 3 });
    const client = node.addPod({ namespace: 'a', name: 'client-0', ip: '10.244.6.2' });
    const server = node.addPod({ namespace: 'b', name: 'server-0', ip: '10.244.6.3' });
    await startTcpServer(node, server, server.ip, 7000);
    const dir = mkdtempSync(join(tmpdir(), 'ft-restart-'));
    const out = join(dir, 'flows.log');
    writeFileSync(join(dir, 'endpoints.yaml'), node.endpointsYaml());
    writeFileSync(
      join(dir, 'flowtrail.yaml'),
      [
        'clusterName: test',
        `nodeName: ${node.nodeName}`,
        `endpoints: { file: ${join(dir, 'endpoints.yaml')} }`,
        'flowLogs: { flushIntervalSeconds: 1, aggregationKindForAllowed: 0 }',
        `sinks: { file: { path: ${out} } }`,
        `spool: { dir: ${join(dir, 'spool')} }`,
        `http: { listen: '' }`,
      ].join('\n'),
    );
    const start = async (): Promise<{ agent: ChildProcess; log: () => string }> => {
      const agent = node!.spawn([
        process.execPath,
        CLI,
        'agent',
        '--config',
        join(dir, 'flowtrail.yaml'),
      ]);
      let text = '';
      agent.stderr!.on('data', (c: Buffer) => {
        text += c.toString();
      });
      await waitForLog(agent, /agent started/, 20_000);
      return { agent, log: () => text };
    };

    const first = await start();
    const conn = await openTcpConnection(node, client, server.ip, 7000, {
      sendBytes: 20_000,
      receiveBytes: 30_000,
      holdOpenMs: 6_000,
    });
    await sleep(2_500); // two flushes report the data sent so far
    first.agent.kill('SIGKILL');
    await new Promise((r) => first.agent.once('exit', r));

    const second = await start();
    expect(second.log()).toMatch(/restored flow baselines/);
    await conn.done; // the server replies now, after the crash
    await sleep(300);
    const truth = findEntry(conntrackEntries(node), {
      src: client.ip,
      sport: conn.sport,
      dport: 7000,
    });
    expect(truth).toBeDefined();
    await sleep(2_000);
    await stopProcess(second.agent, 10_000);

    const records = readFileSync(out, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => decodeRecord(l))
      .filter((r) => r.reporter === 'src' && r.srcPort === conn.sport);
    const sum = (k: 'packetsOut' | 'bytesOut' | 'packetsIn' | 'bytesIn') =>
      records.reduce((n, r) => n + r[k], 0);
    expect({
      packetsOut: sum('packetsOut'),
      bytesOut: sum('bytesOut'),
      packetsIn: sum('packetsIn'),
      bytesIn: sum('bytesIn'),
    }).toEqual({
      packetsOut: truth!.orig.packets,
      bytesOut: truth!.orig.bytes,
      packetsIn: truth!.reply.packets,
      bytesIn: truth!.reply.bytes,
    });
    // Reported by both agents: before and after the crash.
    expect(records.length).toBeGreaterThanOrEqual(2);
  }, 90_000);
});
