/**
 * docs/configuration.md is the rendering of the config schema: every key,
 * its FLOWTRAIL_* variable and its default come from src/config.ts, and each
 * key has a description (src/config-reference.ts).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_LEAVES, envName, validateConfig } from '../../src/config.js';
import { CONFIG_DESCRIPTIONS, renderConfigMarkdown } from '../../src/config-reference.js';

describe('docs/configuration.md', () => {
  it('is the rendering of the schema (regenerate with npm run docs:config)', () => {
    const onDisk = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(onDisk).toBe(renderConfigMarkdown());
  });

  it('describes every key and no key the schema does not have', () => {
    const keys = CONFIG_LEAVES.map((l) => l.path.join('.'));
    expect(keys.filter((k) => !CONFIG_DESCRIPTIONS[k]?.trim())).toEqual([]);
    expect(Object.keys(CONFIG_DESCRIPTIONS).filter((k) => !keys.includes(k))).toEqual([]);
    const doc = renderConfigMarkdown();
    for (const l of CONFIG_LEAVES)
      expect(doc).toContain(`| \`${l.path.join('.')}\` | \`${envName(l.path)}\` |`);
  });

  it('shows the defaults the schema applies', () => {
    const doc = renderConfigMarkdown();
    expect(doc).toContain(
      '| `flowLogs.flushIntervalSeconds` | `FLOWTRAIL_FLOW_LOGS_FLUSH_INTERVAL_SECONDS` | `300` |',
    );
    expect(doc).toContain('| `http.listen` | `FLOWTRAIL_HTTP_LISTEN` | `"127.0.0.1:9099"` |');
    expect(doc).toContain(
      '| `sinks.cloudwatch.retentionDays` | `FLOWTRAIL_SINKS_CLOUDWATCH_RETENTION_DAYS` | `7` |',
    );
  });

  it('its smallest file is a valid config', () => {
    const doc = renderConfigMarkdown();
    const example = /The smallest file:\n\n```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(() => validateConfig(parse(example!))).not.toThrow();
  });
});
