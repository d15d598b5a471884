/**
 * The agent's configuration: the YAML file of DESIGN.md "Contracts", then
 * FLOWTRAIL_* environment variables, then command-line flags, each layer
 * overriding the one before. Everything is validated by one zod schema; a bad
 * value is reported as `key: expected …, got …` (ConfigError, exit code 2),
 * and unknown keys are reported with the nearest valid key, because typos are
 * the commonest configuration mistake.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './util/errors.js';

/** The retention values CloudWatch Logs accepts (PutRetentionPolicy). */
export const RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
  3653,
] as const;

function listWords(values: readonly (string | number)[]): string {
  const shown = values.map((v) => String(v));
  if (shown.length <= 1) return shown.join('');
  return `${shown.slice(0, -1).join(', ')} or ${shown.at(-1)}`;
}

/** A number that must be one of a fixed set, with an error listing the set. */
function oneOf<const T extends readonly number[]>(values: T) {
  return z.custom<T[number]>((v) => typeof v === 'number' && values.includes(v), {
    message: `expected ${listWords(values)}`,
  });
}

const int = (min: number, max: number) =>
  z
    .number({ error: 'expected a number' })
    .int({ error: 'expected an integer' })
    .min(min, { error: `expected an integer from ${min} to ${max}` })
    .max(max, { error: `expected an integer from ${min} to ${max}` });

const nonEmpty = z
  .string({ error: 'expected a string' })
  .min(1, { error: 'expected a non-empty string' });

// CloudWatch log group and stream names allow [.-_/#A-Za-z0-9]; stream names forbid ':' and '*'.
const logGroupName = z.string({ error: 'expected a string' }).regex(/^[.\-_/#A-Za-z0-9]{1,512}$/, {
  error: 'expected 1-512 characters from A-Z a-z 0-9 . - _ / #',
});

const hostPort = z
  .string({ error: 'expected host:port' })
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, {
    error: 'expected host:port, e.g. 127.0.0.1:9099 or [::1]:9099',
  })
  .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65_535, {
    error: 'expected host:port with a port from 0 to 65535',
  });

const urlString = z
  .string({ error: 'expected a URL' })
  .url({ error: 'expected a URL like http://127.0.0.1:5000' });

// A price in USD (for `flowtrail estimate`).
const usd = z
  .number({ error: 'expected a price in USD, e.g. 0.5' })
  .min(0, { error: 'expected a price from 0 to 1000 USD' })
  .max(1000, { error: 'expected a price from 0 to 1000 USD' });

// Kubernetes namespace names, with `*` as a wildcard (e.g. kube-*).
const namespaceList = z.array(
  z.string({ error: 'expected a namespace name' }).regex(/^[a-z0-9*]([-a-z0-9*]{0,62})$/, {
    error: 'expected a namespace name (a-z, 0-9, -) or a pattern with *',
  }),
  { error: 'expected a list of namespace names' },
);

const labelsRecord = z.record(z.string(), z.string({ error: 'expected a string value' }));

export const configSchema = z.strictObject({
  clusterName: nonEmpty.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, {
    error: 'expected letters, digits, . _ - (at most 100, starting with a letter or digit)',
  }),
  nodeName: nonEmpty.regex(/^[^:*\s]{1,253}$/, {
    error: 'expected a node name without spaces, ":" or "*"',
  }),
  endpoints: z
    .strictObject({
      file: nonEmpty.optional(),
      kubernetes: z.strictObject({ kubeconfig: nonEmpty.optional() }).optional(),
      graceSeconds: int(0, 86_400).default(300),
    })
    .prefault({}),
  flowLogs: z
    .strictObject({
      flushIntervalSeconds: int(1, 86_400).default(300),
      aggregationKindForAllowed: oneOf([0, 1, 2] as const).default(2),
      aggregationKindForDenied: oneOf([0, 1, 2] as const).default(1),
      includeLabels: z.boolean({ error: 'expected true or false' }).default(false),
      includePolicies: z.boolean({ error: 'expected true or false' }).default(true),
      enabledForAllowed: z.boolean({ error: 'expected true or false' }).default(true),
      enabledForDenied: z.boolean({ error: 'expected true or false' }).default(true),
      maxTrackedFlows: int(1_000, 10_000_000).default(250_000),
      includeNamespaces: namespaceList.default([]),
      excludeNamespaces: namespaceList.default([]),
      maxRecordsPerFlush: int(0, 10_000_000).default(0),
    })
    .prefault({}),
  nflog: z
    .strictObject({
      ingressGroup: int(0, 65_535).default(1),
      egressGroup: int(0, 65_535).default(2),
      // Absent: the conntrack socket's (INHERITED_DEFAULTS).
      receiveBufferBytes: int(65_536, 1 << 30).optional(),
      tickMs: int(1, 1_000).optional(),
    })
    .prefault({}),
  denies: z
    .strictObject({
      // Absent: both where the kernel supports drop events, else nflog (doctor says which and why).
      source: z
        .enum(['nflog', 'kernel', 'both'], { error: 'expected nflog, kernel or both' })
        .optional(),
      // How long an iptables drop event waits for the NFLOG copy of its packet (source both).
      matchWindowMs: int(10, 60_000).default(1_000),
      // Name the NetworkPolicy behind kernel drops (with endpoints.kubernetes: from informers).
      namePolicies: z.boolean({ error: 'expected true or false' }).default(true),
      // NetworkPolicy manifests for naming, where endpoints come from a file (read at start).
      networkPoliciesFile: nonEmpty.optional(),
      ringBufferBytes: z
        .number({ error: 'expected a number' })
        .refine((n) => Number.isInteger(n) && n >= 4096 && n <= 1 << 30 && (n & (n - 1)) === 0, {
          error: 'expected a power of two from 4096 to 1073741824',
        })
        .default(4 * 1024 * 1024),
    })
    .prefault({}),
  conntrack: z
    .strictObject({
      receiveBufferBytes: int(65_536, 1 << 30).default(32 * 1024 * 1024),
      tickMs: int(1, 1_000).default(10),
      subscribeUpdates: z.boolean({ error: 'expected true or false' }).default(false),
    })
    .prefault({}),
  sinks: z
    .strictObject({
      cloudwatch: z
        .strictObject({
          region: nonEmpty.optional(),
          endpoint: urlString.optional(),
          logGroupName: logGroupName.optional(),
          logStreamName: z
            .string()
            .regex(/^[^:*]{1,512}$/, { error: 'expected 1-512 characters without ":" or "*"' })
            .optional(),
          retentionDays: oneOf(RETENTION_DAYS).default(7),
          tags: labelsRecord.optional(),
        })
        .optional(),
      file: z
        .strictObject({
          path: nonEmpty,
          maxBytes: int(1024, Number.MAX_SAFE_INTEGER).default(100 * 1024 * 1024),
          maxFiles: int(1, 1000).default(5),
        })
        .optional(),
      stdout: z.boolean({ error: 'expected true or false' }).default(false),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      enabled: z.boolean({ error: 'expected true or false' }).default(true),
      // DroppedPackets per Reason: kernel drops that are not policy denies (off: one series per reason).
      droppedPackets: z.boolean({ error: 'expected true or false' }).default(false),
      pushIntervalSeconds: int(1, 3_600).default(60),
      namespace: nonEmpty
        .regex(/^[^:]{1,255}$/, { error: 'expected 1-255 characters without ":"' })
        .default('flowtrail'),
    })
    .prefault({}),
  spool: z
    .strictObject({
      dir: nonEmpty.default('./spool'),
      maxBytes: int(1024 * 1024, Number.MAX_SAFE_INTEGER).default(1_073_741_824),
    })
    .prefault({}),
  pricing: z
    .strictObject({
      ingestStandardPerGb: usd.default(0.5),
      ingestInfrequentAccessPerGb: usd.default(0.25),
    })
    .prefault({}),
  http: z
    .strictObject({
      listen: hostPort.or(z.literal('')).default('127.0.0.1:9099'),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z
        .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], {
          error: 'expected trace, debug, info, warn, error, fatal or silent',
        })
        .default('info'),
    })
    .prefault({}),
});

type ParsedConfig = z.output<typeof configSchema>;
/** The validated config: keys that default to another key's value are filled in (INHERITED_DEFAULTS). */
export type Config = Omit<ParsedConfig, 'nflog'> & {
  nflog: Required<ParsedConfig['nflog']>;
};

/** Keys whose default is another key's value, by dotted path. */
export const INHERITED_DEFAULTS: Readonly<Record<string, string>> = {
  'nflog.receiveBufferBytes': 'conntrack.receiveBufferBytes',
  'nflog.tickMs': 'conntrack.tickMs',
};
/** The raw, unvalidated shape a YAML file or override layer provides. */
export type RawConfig = Record<string, unknown>;

/** Derived names that DESIGN.md fixes. */
export function defaultLogGroupName(clusterName: string): string {
  return `flowtrail-flowlogs-${clusterName}`;
}
export function defaultLogStreamName(nodeName: string): string {
  return `${nodeName}_Flowlogs`;
}
/** The sibling stream of loss events (src/loss/): JSON lines, never flow records. */
export function defaultEventsStreamName(nodeName: string): string {
  return `${nodeName}_Events`;
}

// ---------------------------------------------------------------------------
// Leaves: every settable key, its type, its environment variable.

type LeafKind = 'string' | 'int' | 'bool' | 'map' | 'list';
interface Leaf {
  readonly path: readonly string[];
  readonly kind: LeafKind;
}

/** The schema inside optional/default/prefault wrappers. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    const def = (s as unknown as { def: { type: string; innerType?: z.ZodType } }).def;
    if (
      (def.type === 'optional' || def.type === 'default' || def.type === 'prefault') &&
      def.innerType
    ) {
      s = def.innerType;
      continue;
    }
    return s;
  }
}

function collectLeaves(schema: z.ZodType, path: string[], out: Leaf[]): void {
  let s: z.ZodType = schema;
  // Unwrap optional/default/prefault wrappers to reach the shape.
  s = unwrap(s);
  const def = (s as unknown as { def: { type: string; shape?: Record<string, z.ZodType> } }).def;
  if (def.type === 'object' && def.shape) {
    for (const [k, v] of Object.entries(def.shape)) collectLeaves(v, [...path, k], out);
    return;
  }
  const kind: LeafKind =
    def.type === 'boolean'
      ? 'bool'
      : def.type === 'number' || def.type === 'custom'
        ? 'int'
        : def.type === 'record'
          ? 'map'
          : def.type === 'array'
            ? 'list'
            : 'string';
  out.push({ path, kind });
}

export const CONFIG_LEAVES: readonly Leaf[] = (() => {
  const out: Leaf[] = [];
  collectLeaves(configSchema, [], out);
  return out;
})();

function snake(s: string): string {
  return s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** FLOWTRAIL_FLOW_LOGS_FLUSH_INTERVAL_SECONDS for flowLogs.flushIntervalSeconds. */
export function envName(path: readonly string[]): string {
  return `FLOWTRAIL_${path.map(snake).join('_')}`;
}

function coerce(leaf: Leaf, text: string): unknown {
  switch (leaf.kind) {
    case 'int': {
      const t = text.trim();
      return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : text;
    }
    case 'bool': {
      const t = text.trim().toLowerCase();
      if (t === 'true' || t === '1' || t === 'yes') return true;
      if (t === 'false' || t === '0' || t === 'no') return false;
      return text;
    }
    case 'list':
      // a,b,c
      return text
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
    case 'map': {
      // k=v,k2=v2
      const map: Record<string, string> = {};
      for (const part of text.split(',')) {
        if (!part) continue;
        const eq = part.indexOf('=');
        if (eq < 0) return text;
        map[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
      }
      return map;
    }
    default:
      return text;
  }
}

function setPath(target: RawConfig, path: readonly string[], value: unknown): void {
  let node: RawConfig = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) {
      node[key] = {};
    }
    node = node[key] as RawConfig;
  }
  node[path.at(-1)!] = value;
}

function getPath(source: unknown, path: readonly PropertyKey[]): unknown {
  let node: unknown = source;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

/** Override layer from FLOWTRAIL_* variables (unknown FLOWTRAIL_* names are reported). */
export function envOverrides(env: NodeJS.ProcessEnv): { values: RawConfig; unknown: string[] } {
  const values: RawConfig = {};
  const known = new Set<string>();
  for (const leaf of CONFIG_LEAVES) {
    const name = envName(leaf.path);
    known.add(name);
    const text = env[name];
    if (text !== undefined && text !== '') setPath(values, leaf.path, coerce(leaf, text));
  }
  // Variables the agent reads itself but that are not config keys.
  const ignored = new Set(['FLOWTRAIL_LOG_LEVEL', 'FLOWTRAIL_CONFIG', 'FLOWTRAIL_BUILD_COMMIT']);
  const unknown = Object.keys(env).filter(
    (k) => k.startsWith('FLOWTRAIL_') && !known.has(k) && !ignored.has(k),
  );
  return { values, unknown };
}

/**
 * `--set key.path=value` overrides (flags). Keys are validated against the
 * schema's leaves so that a typo is reported, not silently ignored.
 */
export function setOverrides(assignments: readonly string[]): RawConfig {
  const values: RawConfig = {};
  const problems: string[] = [];
  const byKey = new Map(CONFIG_LEAVES.map((l) => [l.path.join('.'), l]));
  for (const a of assignments) {
    const eq = a.indexOf('=');
    if (eq <= 0) {
      problems.push(`--set ${a}: expected key=value`);
      continue;
    }
    const key = a.slice(0, eq);
    const leaf = byKey.get(key);
    if (!leaf) {
      problems.push(`--set ${key}: unknown key${suggest(key, [...byKey.keys()])}`);
      continue;
    }
    setPath(values, leaf.path, coerce(leaf, a.slice(eq + 1)));
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return values;
}

function deepMerge(base: RawConfig, over: RawConfig): RawConfig {
  const out: RawConfig = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const prev = out[k];
    if (
      typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v) &&
      typeof prev === 'object' &&
      prev !== null &&
      !Array.isArray(prev)
    ) {
      out[k] = deepMerge(prev as RawConfig, v as RawConfig);
    } else {
      out[k] = v;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Error messages.

function levenshtein(a: string, b: string): number {
  const d: number[] = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}

function suggest(key: string, candidates: readonly string[]): string {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const dist = levenshtein(key.toLowerCase(), c.toLowerCase());
    if (dist < bestD) {
      bestD = dist;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 3))
    ? ` (did you mean "${best}"?)`
    : '';
}

function keysAt(path: readonly PropertyKey[]): string[] {
  let s: z.ZodType = configSchema;
  for (const key of path) {
    s = unwrap(s);
    const shape = (s as unknown as { def: { shape?: Record<string, z.ZodType> } }).def.shape;
    const next = shape?.[String(key)];
    if (!next) return [];
    s = next;
  }
  s = unwrap(s);
  return Object.keys(
    (s as unknown as { def: { shape?: Record<string, unknown> } }).def.shape ?? {},
  );
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object' && value !== null) {
    return Array.isArray(value) ? 'a list' : 'a mapping';
  }
  return String(value);
}

function formatIssues(error: z.ZodError, input: unknown): string[] {
  const lines: string[] = [];
  for (const issue of error.issues) {
    const where = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      const valid = keysAt(issue.path);
      for (const key of issue.keys) {
        const full = where ? `${where}.${key}` : key;
        lines.push(`${full}: unknown key${suggest(key, valid)}`);
      }
      continue;
    }
    const value = getPath(input, issue.path);
    if (value === undefined && issue.code === 'invalid_type') {
      lines.push(
        `${where}: required, expected ${issue.expected === 'string' ? 'a string' : issue.expected}`,
      );
      continue;
    }
    let message = issue.message;
    if (issue.code === 'invalid_type' && !message.startsWith('expected')) {
      message = `expected ${issue.expected}`;
    }
    lines.push(`${where}: ${message}, got ${show(value)}`);
  }
  return lines;
}

// ---------------------------------------------------------------------------
// Loading.

export interface LoadConfigOptions {
  /** Path of the YAML file; optional when env/flags give clusterName and nodeName. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Highest-precedence overrides, already structured (e.g. from flags). */
  overrides?: RawConfig;
  /** Lowest-precedence values, under the file (e.g. a placeholder nodeName for commands that never use it). */
  defaults?: RawConfig;
}

export interface LoadedConfig {
  config: Config;
  /** Non-fatal notes, e.g. unknown FLOWTRAIL_* variables. */
  warnings: string[];
}

/** Parse YAML text into the raw layer, with error positions. */
export function parseConfigYaml(text: string, origin: string): RawConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const at = pos ? `${origin}:${pos.line}:${pos.col}` : origin;
        return `${at}: invalid YAML: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError([`${origin}: expected a mapping of settings at the top level`]);
  }
  return value as RawConfig;
}

export function validateConfig(raw: RawConfig): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(formatIssues(result.error, raw));
  const parsed = result.data;
  for (const [key, from] of Object.entries(INHERITED_DEFAULTS)) {
    const path = key.split('.');
    if (getPath(parsed, path) === undefined) {
      setPath(parsed as RawConfig, path, getPath(parsed, from.split('.')));
    }
  }
  const config = parsed as Config;
  if (config.nflog.ingressGroup === config.nflog.egressGroup) {
    throw new ConfigError([
      `nflog.egressGroup: expected a group different from nflog.ingressGroup (${config.nflog.ingressGroup}), got ${config.nflog.egressGroup}`,
    ]);
  }
  if (config.endpoints.file !== undefined && config.endpoints.kubernetes !== undefined) {
    throw new ConfigError(['endpoints: expected either file or kubernetes, got both']);
  }
  return config;
}

export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  let fileLayer: RawConfig = {};
  if (options.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      throw new ConfigError([`${options.file}: cannot read the config file (${code})`]);
    }
    fileLayer = parseConfigYaml(text, options.file);
  }
  const envLayer = envOverrides(env);
  const raw = deepMerge(
    deepMerge(deepMerge(options.defaults ?? {}, fileLayer), envLayer.values),
    options.overrides ?? {},
  );
  const config = validateConfig(raw);
  const warnings = envLayer.unknown.map(
    (name) =>
      `${name}: unknown FLOWTRAIL_* variable, ignored${suggest(
        name,
        CONFIG_LEAVES.map((l) => envName(l.path)),
      )}`,
  );
  return { config, warnings };
}
