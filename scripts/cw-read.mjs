#!/usr/bin/env node
// Reads what a local CloudWatch emulator holds, from inside a network
// namespace (the emulator listens on that namespace's loopback). Prints JSON.
//   cw-read.mjs ENDPOINT events GROUP STREAM
//   cw-read.mjs ENDPOINT streams GROUP
//   cw-read.mjs ENDPOINT metric NAMESPACE METRIC DIMNAME=VALUE[,..] START_MS END_MS
//   cw-read.mjs ENDPOINT list-metrics NAMESPACE
import {
  CloudWatchClient,
  GetMetricStatisticsCommand,
  ListMetricsCommand,
} from '@aws-sdk/client-cloudwatch';
import {
  CloudWatchLogsClient,
  DescribeLogStreamsCommand,
  GetLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';

const [endpoint, what, ...args] = process.argv.slice(2);
const cfg = {
  region: 'us-east-1',
  endpoint,
  credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
};

if (what === 'events') {
  const logs = new CloudWatchLogsClient(cfg);
  const events = [];
  let token;
  for (;;) {
    const r = await logs.send(
      new GetLogEventsCommand({
        logGroupName: args[0],
        logStreamName: args[1],
        startFromHead: true,
        nextToken: token,
      }),
    );
    events.push(...(r.events ?? []).map((e) => ({ timestamp: e.timestamp, message: e.message })));
    if (!r.nextForwardToken || r.nextForwardToken === token || (r.events ?? []).length === 0) break;
    token = r.nextForwardToken;
  }
  process.stdout.write(JSON.stringify(events));
} else if (what === 'streams') {
  const logs = new CloudWatchLogsClient(cfg);
  const r = await logs.send(new DescribeLogStreamsCommand({ logGroupName: args[0] }));
  process.stdout.write(JSON.stringify((r.logStreams ?? []).map((s) => s.logStreamName)));
} else if (what === 'metric') {
  const cw = new CloudWatchClient(cfg);
  const dims = (args[2] ?? '')
    .split(',')
    .filter(Boolean)
    .map((kv) => ({ Name: kv.split('=')[0], Value: kv.split('=')[1] }));
  const r = await cw.send(
    new GetMetricStatisticsCommand({
      Namespace: args[0],
      MetricName: args[1],
      Dimensions: dims,
      StartTime: new Date(Number(args[3])),
      EndTime: new Date(Number(args[4])),
      Period: 60,
      Statistics: ['Sum', 'SampleCount', 'Maximum', 'Minimum'],
    }),
  );
  process.stdout.write(JSON.stringify(r.Datapoints ?? []));
} else if (what === 'list-metrics') {
  const cw = new CloudWatchClient(cfg);
  const r = await cw.send(new ListMetricsCommand({ Namespace: args[0] }));
  process.stdout.write(JSON.stringify(r.Metrics ?? []));
} else {
  process.stderr.write(`cw-read: unknown request ${what}\n`);
  process.exit(2);
}
