/**
 * Loading the configuration for any command: the file, FLOWTRAIL_* variables
 * and flags in layers, and a bad one answered with exit code 2 and its
 * problems one a line, never a stack trace.
 */
import { type Config, loadConfig, type RawConfig } from '../config.js';
import { ConfigError } from '../util/errors.js';
import { EXIT_USAGE } from './options.js';

/** Builds the flag layer, or exits 2 naming each bad `--set` (one a line). */
export function overridesOrExit(build: () => RawConfig): RawConfig {
  try {
    return build();
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.issues) process.stderr.write(`flowtrail: ${line}\n`);
      process.exit(EXIT_USAGE);
    }
    throw err;
  }
}

/**
 * Loads the config or exits 2 with the problems, one a line, never a stack
 * trace. `defaults` sit under the file (commands that never use nodeName
 * give a placeholder, so the DaemonSet's ConfigMap, which has none, loads).
 */
export function loadConfigOrExit(
  file: string | undefined,
  overrides: RawConfig,
  defaults?: RawConfig,
): Config {
  try {
    const { config, warnings } = loadConfig({ file, overrides, ...(defaults ? { defaults } : {}) });
    for (const w of warnings) process.stderr.write(`flowtrail: warning: ${w}\n`);
    return config;
  } catch (err) {
    if (err instanceof ConfigError) exitInvalidConfig(err, file);
    throw err;
  }
}

/** Exits 2 with a configuration's problems, one a line, never a stack trace. */
export function exitInvalidConfig(err: ConfigError, file: string | undefined): never {
  process.stderr.write(`flowtrail: invalid configuration${file ? ` (${file})` : ''}:\n`);
  for (const line of err.issues) process.stderr.write(`  ${line}\n`);
  process.exit(EXIT_USAGE);
}
