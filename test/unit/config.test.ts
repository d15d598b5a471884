import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CONFIG_LEAVES,
  envName,
  loadConfig,
  type RawConfig,
  setOverrides,
  validateConfig,
} from '../../src/config.js';
import { ConfigError } from '../../src/util/errors.js';

const base = { clusterName: 'demo', nodeName: 'node-1' };

function errorOf(raw: RawConfig): string {
  try {
    validateConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

function writeYaml(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ft-config-'));
  const path = join(dir, 'flowtrail.yaml');
  writeFileSync(path, text);
  return path;
}

describe('config defaults', () => {
  it('fills every default of DESIGN.md from just clusterName and nodeName', () => {
    const c = validateConfig(base);
    expect(c.flowLogs).toMatchObject({
      flushIntervalSeconds: 300,
      aggregationKindForAllowed: 2,
      aggregationKindForDenied: 1,
      includeLabels: false,
      // 27-field records (policy names) by default: every reader takes both variants.
      includePolicies: true,
    });
    expect(
      validateConfig({ ...base, flowLogs: { includePolicies: false } }).flowLogs,
    ).toMatchObject({ includePolicies: false });
    // The NFLOG socket's buffer and tick default to the conntrack socket's.
    expect(c.nflog).toEqual({
      ingressGroup: 1,
      egressGroup: 2,
      receiveBufferBytes: c.conntrack.receiveBufferBytes,
      tickMs: c.conntrack.tickMs,
    });
    expect(c.metrics).toMatchObject({ pushIntervalSeconds: 60, namespace: 'flowtrail' });
    expect(c.spool).toEqual({ dir: './spool', maxBytes: 1073741824 });
    expect(c.http.listen).toBe('127.0.0.1:9099');
    expect(c.sinks.cloudwatch).toBeUndefined();
  });

  it('nflog.receiveBufferBytes and nflog.tickMs follow the conntrack keys unless set', () => {
    const conntrack = { receiveBufferBytes: 65_536, tickMs: 250 };
    expect(validateConfig({ ...base, conntrack }).nflog).toMatchObject(conntrack);
    const nflog = { receiveBufferBytes: 1 << 20, tickMs: 5 };
    expect(validateConfig({ ...base, conntrack, nflog }).nflog).toMatchObject(nflog);
    expect(() => validateConfig({ ...base, nflog: { tickMs: 0 } })).toThrow(
      'nflog.tickMs: expected an integer from 1 to 1000, got 0',
    );
  });

  it('accepts the full example of DESIGN.md "Contracts"', () => {
    const path = writeYaml(`
clusterName: demo
nodeName: node-1
endpoints:
  file: ./endpoints.yaml
flowLogs:
  flushIntervalSeconds: 300
  aggregationKindForAllowed: 2
  aggregationKindForDenied: 1
  includeLabels: false
nflog: { ingressGroup: 1, egressGroup: 2 }
sinks:
  cloudwatch:
    region: us-east-1
    endpoint: http://127.0.0.1:5000
    logGroupName: flowtrail-flowlogs-demo
    retentionDays: 7
  file: { path: ./flowlogs.log }
metrics: { pushIntervalSeconds: 60, namespace: flowtrail }
spool: { dir: ./spool, maxBytes: 1073741824 }
http: { listen: 127.0.0.1:9099 }
`);
    const { config } = loadConfig({ file: path, env: {} });
    expect(config.sinks.cloudwatch).toMatchObject({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:5000',
      logGroupName: 'flowtrail-flowlogs-demo',
      retentionDays: 7,
    });
    expect(config.sinks.file?.path).toBe('./flowlogs.log');
    expect(config.endpoints.file).toBe('./endpoints.yaml');
  });
});

describe('config errors name the key, the value and what was expected', () => {
  const cases: [string, RawConfig, string][] = [
    [
      'aggregation kind out of range',
      { ...base, flowLogs: { aggregationKindForAllowed: 5 } },
      'flowLogs.aggregationKindForAllowed: expected 0, 1 or 2, got 5',
    ],
    [
      'denied aggregation kind as text',
      { ...base, flowLogs: { aggregationKindForDenied: 'one' } },
      'flowLogs.aggregationKindForDenied: expected 0, 1 or 2, got "one"',
    ],
    [
      'flush interval zero',
      { ...base, flowLogs: { flushIntervalSeconds: 0 } },
      'flowLogs.flushIntervalSeconds: expected an integer from 1 to 86400, got 0',
    ],
    [
      'flush interval fractional',
      { ...base, flowLogs: { flushIntervalSeconds: 1.5 } },
      'flowLogs.flushIntervalSeconds: expected an integer, got 1.5',
    ],
    [
      'labels flag not a boolean',
      { ...base, flowLogs: { includeLabels: 'yes' } },
      'flowLogs.includeLabels: expected true or false, got "yes"',
    ],
    [
      'nflog group too large',
      { ...base, nflog: { ingressGroup: 70000 } },
      'nflog.ingressGroup: expected an integer from 0 to 65535, got 70000',
    ],
    [
      'retention not accepted by CloudWatch',
      { ...base, sinks: { cloudwatch: { retentionDays: 8 } } },
      'sinks.cloudwatch.retentionDays: expected 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653, got 8',
    ],
    [
      'endpoint not a URL',
      { ...base, sinks: { cloudwatch: { endpoint: 'localhost' } } },
      'sinks.cloudwatch.endpoint: expected a URL like http://127.0.0.1:5000, got "localhost"',
    ],
    [
      'log group name with a space',
      { ...base, sinks: { cloudwatch: { logGroupName: 'my group' } } },
      'sinks.cloudwatch.logGroupName: expected 1-512 characters from A-Z a-z 0-9 . - _ / #, got "my group"',
    ],
    [
      'file sink without a path',
      { ...base, sinks: { file: {} } },
      'sinks.file.path: required, expected a string',
    ],
    [
      'metrics namespace empty',
      { ...base, metrics: { namespace: '' } },
      'metrics.namespace: expected a non-empty string, got ""',
    ],
    [
      'spool too small',
      { ...base, spool: { maxBytes: 10 } },
      'spool.maxBytes: expected an integer from 1048576 to 9007199254740991, got 10',
    ],
    [
      'listen address without a port',
      { ...base, http: { listen: '127.0.0.1' } },
      'http.listen: expected host:port, e.g. 127.0.0.1:9099 or [::1]:9099, got "127.0.0.1"',
    ],
    [
      'listen port above 65535',
      { ...base, http: { listen: '127.0.0.1:99999' } },
      'http.listen: expected host:port with a port from 0 to 65535, got "127.0.0.1:99999"',
    ],
    ['missing clusterName', { nodeName: 'n' }, 'clusterName: required, expected a string'],
    ['missing nodeName', { clusterName: 'c' }, 'nodeName: required, expected a string'],
    [
      'cluster name with a slash',
      { clusterName: 'a/b', nodeName: 'n' },
      'clusterName: expected letters, digits, . _ - (at most 100, starting with a letter or digit), got "a/b"',
    ],
    [
      'a section given as a list',
      { ...base, flowLogs: [1, 2] },
      'flowLogs: expected object, got a list',
    ],
    [
      'same group for ingress and egress',
      { ...base, nflog: { ingressGroup: 3, egressGroup: 3 } },
      'nflog.egressGroup: expected a group different from nflog.ingressGroup (3), got 3',
    ],
    [
      'log level unknown',
      { ...base, log: { level: 'verbose' } },
      'log.level: expected trace, debug, info, warn, error, fatal or silent, got "verbose"',
    ],
  ];
  for (const [name, raw, message] of cases) {
    it(name, () => {
      expect(errorOf(raw)).toContain(message);
    });
  }

  it('reports unknown keys with the nearest valid key', () => {
    const message = errorOf({
      ...base,
      flowLog: {},
      flowLogs: { flushIntervalSecond: 10 },
      sinks: { cloudwatch: { retentionDay: 7 } },
    });
    expect(message).toContain('flowLog: unknown key (did you mean "flowLogs"?)');
    expect(message).toContain(
      'flowLogs.flushIntervalSecond: unknown key (did you mean "flushIntervalSeconds"?)',
    );
    expect(message).toContain(
      'sinks.cloudwatch.retentionDay: unknown key (did you mean "retentionDays"?)',
    );
  });

  it('reports every problem at once, one per line', () => {
    const message = errorOf({
      ...base,
      flowLogs: { aggregationKindForAllowed: 9 },
      nflog: { egressGroup: -1 },
    });
    expect(message.split('\n')).toHaveLength(2);
  });

  it('reports invalid YAML with its line and column', () => {
    const path = writeYaml('clusterName: demo\nnodeName: [unclosed\n');
    expect(() => loadConfig({ file: path, env: {} })).toThrow(
      /flowtrail\.yaml:\d+:\d+: invalid YAML/,
    );
  });

  it('reports a missing file with its errno name', () => {
    expect(() => loadConfig({ file: '/nonexistent/flowtrail.yaml', env: {} })).toThrow(
      '/nonexistent/flowtrail.yaml: cannot read the config file (ENOENT)',
    );
  });
});

describe('config layers: file < environment < flags', () => {
  it('environment variables override the file', () => {
    const path = writeYaml(
      'clusterName: demo\nnodeName: node-1\nflowLogs: { flushIntervalSeconds: 300 }\n',
    );
    const { config } = loadConfig({
      file: path,
      env: {
        FLOWTRAIL_CLUSTER_NAME: 'prod',
        FLOWTRAIL_FLOW_LOGS_FLUSH_INTERVAL_SECONDS: '15',
        FLOWTRAIL_FLOW_LOGS_INCLUDE_LABELS: 'true',
        FLOWTRAIL_SINKS_CLOUDWATCH_REGION: 'eu-west-1',
        FLOWTRAIL_SINKS_CLOUDWATCH_TAGS: 'team=net,env=prod',
      },
    });
    expect(config.clusterName).toBe('prod');
    expect(config.flowLogs.flushIntervalSeconds).toBe(15);
    expect(config.flowLogs.includeLabels).toBe(true);
    expect(config.sinks.cloudwatch?.region).toBe('eu-west-1');
    expect(config.sinks.cloudwatch?.tags).toEqual({ team: 'net', env: 'prod' });
  });

  it('flags override environment variables', () => {
    const { config } = loadConfig({
      env: { FLOWTRAIL_CLUSTER_NAME: 'prod', FLOWTRAIL_NODE_NAME: 'n1' },
      overrides: setOverrides(['clusterName=staging', 'flowLogs.aggregationKindForAllowed=0']),
    });
    expect(config.clusterName).toBe('staging');
    expect(config.nodeName).toBe('n1');
    expect(config.flowLogs.aggregationKindForAllowed).toBe(0);
  });

  it('a bad environment value is reported with the key it sets', () => {
    expect(() =>
      loadConfig({
        env: { ...envOf(base), FLOWTRAIL_FLOW_LOGS_AGGREGATION_KIND_FOR_ALLOWED: '5' },
      }),
    ).toThrow('flowLogs.aggregationKindForAllowed: expected 0, 1 or 2, got 5');
  });

  it('unknown FLOWTRAIL_ variables are reported as warnings with a suggestion', () => {
    const { warnings } = loadConfig({ env: { ...envOf(base), FLOWTRAIL_CLUSTERNAME: 'x' } });
    expect(warnings).toEqual([
      'FLOWTRAIL_CLUSTERNAME: unknown FLOWTRAIL_* variable, ignored (did you mean "FLOWTRAIL_CLUSTER_NAME"?)',
    ]);
  });

  it('an unknown --set key is an error with a suggestion', () => {
    expect(() => setOverrides(['flowLogs.flushInterval=5'])).toThrow(
      '--set flowLogs.flushInterval: unknown key (did you mean "flowLogs.flushIntervalSeconds"?)',
    );
  });

  it('every config key has an environment variable named after its path', () => {
    const names = CONFIG_LEAVES.map((l) => envName(l.path));
    expect(names).toContain('FLOWTRAIL_CLUSTER_NAME');
    expect(names).toContain('FLOWTRAIL_SINKS_CLOUDWATCH_LOG_GROUP_NAME');
    expect(names).toContain('FLOWTRAIL_SPOOL_MAX_BYTES');
    expect(new Set(names).size).toBe(names.length);
  });
});

function envOf(raw: { clusterName: string; nodeName: string }): NodeJS.ProcessEnv {
  return { FLOWTRAIL_CLUSTER_NAME: raw.clusterName, FLOWTRAIL_NODE_NAME: raw.nodeName };
}
