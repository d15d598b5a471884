/**
 * The Logs Insights polling loop on a fake client: statuses in, result or
 * typed error out, with a fake clock (no waiting).
 */
import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { describe, expect, it } from 'vitest';
import { runInsightsQuery } from '../../src/report/insights.js';
import { FlowtrailError } from '../../src/util/errors.js';

function fakeClient(statuses: string[]) {
  const sent: { name: string; input: Record<string, unknown> }[] = [];
  let i = 0;
  const client = {
    send: async (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
      sent.push({ name: cmd.constructor.name, input: cmd.input });
      if (cmd.constructor.name === 'StartQueryCommand') return { queryId: 'q-1' };
      if (cmd.constructor.name === 'StopQueryCommand') return { success: true };
      const status = statuses[Math.min(i++, statuses.length - 1)];
      return {
        status,
        results:
          status === 'Complete'
            ? [
                [
                  { field: 'a', value: '1' },
                  { field: '@ptr', value: 'x' },
                ],
                [
                  { field: 'b', value: '2' },
                  { field: 'a', value: '3' },
                ],
              ]
            : [],
      };
    },
  };
  return { client: client as unknown as CloudWatchLogsClient, sent };
}

const request = { logGroupName: 'g', startTime: 100, endTime: 200, queryString: 'fields @message' };

function clock() {
  let t = 0;
  return {
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
    },
  };
}

describe('runInsightsQuery', () => {
  it('polls through Scheduled and Running and returns rows without @ptr, fields in first-seen order', async () => {
    const { client, sent } = fakeClient(['Scheduled', 'Running', 'Complete']);
    const r = await runInsightsQuery(client, request, { ...clock(), pollMs: 10 });
    expect(r.fields).toEqual(['a', 'b']);
    expect(r.rows).toEqual([{ a: '1' }, { b: '2', a: '3' }]);
    expect(sent.map((s) => s.name)).toEqual([
      'StartQueryCommand',
      'GetQueryResultsCommand',
      'GetQueryResultsCommand',
      'GetQueryResultsCommand',
    ]);
    expect(sent[0]!.input).toEqual(request);
  });

  it.each(['Failed', 'Cancelled', 'Timeout'])(
    'throws ERR_QUERY_FAILED when the query ends %s',
    async (s) => {
      const { client } = fakeClient(['Running', s]);
      const err = await runInsightsQuery(client, request, { ...clock(), pollMs: 10 }).catch(
        (e) => e,
      );
      expect(err).toBeInstanceOf(FlowtrailError);
      expect((err as FlowtrailError).code).toBe('ERR_QUERY_FAILED');
      expect((err as FlowtrailError).context.status).toBe(s);
    },
  );

  it('stops the query and throws ERR_QUERY_DEADLINE when it is still running at the deadline', async () => {
    const { client, sent } = fakeClient(['Running']);
    const err = await runInsightsQuery(client, request, {
      ...clock(),
      pollMs: 1_000,
      deadlineMs: 5_000,
    }).catch((e) => e);
    expect((err as FlowtrailError).code).toBe('ERR_QUERY_DEADLINE');
    // Polls at t = 0, 1 s, … 5 s (the deadline), then gives up.
    expect(sent.filter((s) => s.name === 'GetQueryResultsCommand')).toHaveLength(6);
    expect(sent.at(-1)!.name).toBe('StopQueryCommand');
  });
});
