/**
 * Errors with a stable `code` and context, so logs and tests can match on
 * what failed rather than on message text.
 */
export class FlowtrailError extends Error {
  readonly code: string;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(
    code: string,
    message: string,
    context: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }
}

/** Bad configuration: exit code 2, message names key, value and expectation. */
export class ConfigError extends FlowtrailError {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super('ERR_CONFIG', issues.join('\n'), { issues });
    this.issues = issues;
  }
}

/** Malformed netlink/NFLOG/conntrack bytes. `offset` is where in the buffer decoding stopped. */
export class DecodeError extends FlowtrailError {
  constructor(code: string, message: string, context: { offset: number; [k: string]: unknown }) {
    super(code, message, context);
  }
}
