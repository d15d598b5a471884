/**
 * The AWS region for everything that talks to CloudWatch (the agent, doctor
 * and the commands): the first given of the flag and the config file, then
 * the SDK's environment variables. No silent default: querying or shipping
 * to the wrong region finds "no such log group", which hides the cause.
 */
const REGION_VARIABLES = ['AWS_REGION', 'AWS_DEFAULT_REGION'] as const;

/** The region and where it came from (a setting's name, or the variable's), or undefined. */
export function resolveRegionFrom(
  explicit: readonly (readonly [from: string, region: string | undefined])[],
  env: NodeJS.ProcessEnv = process.env,
): { region: string; from: string } | undefined {
  for (const [from, region] of explicit) if (region) return { region, from };
  for (const name of REGION_VARIABLES) {
    const region = env[name];
    if (region) return { region, from: name };
  }
  return undefined;
}

export function resolveRegion(...explicit: (string | undefined)[]): string | undefined {
  return resolveRegionFrom(explicit.map((r) => ['', r] as const))?.region;
}

/** What to say when resolveRegion found nothing; `withConfig` when the command reads --config. */
export function regionRequired(withConfig: boolean): string {
  return withConfig
    ? '--region is required (or AWS_REGION, or sinks.cloudwatch.region in --config)'
    : '--region is required (or AWS_REGION)';
}

/** The agent's and doctor's words when sinks.cloudwatch has no region from anywhere. */
export const AGENT_REGION_REQUIRED =
  'sinks.cloudwatch.region: required, as neither AWS_REGION nor AWS_DEFAULT_REGION is set';
