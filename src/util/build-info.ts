/**
 * What this build is, for `flowtrail --version` and the
 * `flowtrail_build_info` metric: the package version, the source commit
 * when the image was built with one (FLOWTRAIL_BUILD_COMMIT, set by
 * deploy/Dockerfile's COMMIT build argument), and the Node.js version.
 */
import { readFileSync } from 'node:fs';

export interface BuildInfo {
  version: string;
  /** The git commit the build came from, or `unknown`. */
  commit: string;
  nodeVersion: string;
}

let cached: BuildInfo | undefined;

export function buildInfo(env: NodeJS.ProcessEnv = process.env): BuildInfo {
  if (cached && env === process.env) return cached;
  // src/util/ and dist/util/ are both two levels below the package root.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  const info = {
    version: pkg.version,
    commit: env.FLOWTRAIL_BUILD_COMMIT || 'unknown',
    nodeVersion: process.versions.node,
  };
  if (env === process.env) cached = info;
  return info;
}
