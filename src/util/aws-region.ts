/**
 * The AWS region for the commands that talk to CloudWatch: the first given of
 * the flag and the config file, then the SDK's environment variables. No
 * silent default: querying the wrong region finds "no such log group", which
 * hides the cause.
 */
export function resolveRegion(...explicit: (string | undefined)[]): string | undefined {
  for (const r of [...explicit, process.env.AWS_REGION, process.env.AWS_DEFAULT_REGION]) {
    if (r) return r;
  }
  return undefined;
}

/** What to say when resolveRegion found nothing; `withConfig` when the command reads --config. */
export function regionRequired(withConfig: boolean): string {
  return withConfig
    ? '--region is required (or AWS_REGION, or sinks.cloudwatch.region in --config)'
    : '--region is required (or AWS_REGION)';
}
