/**
 * The CloudWatch Logs subscription payload: event.awslogs.data is base64 of
 * gzip of JSON. CONTROL_MESSAGE (sent once when a subscription is created to
 * check the destination) carries no log events and is ignored.
 */
import { gunzipSync } from 'node:zlib';
import type { CloudWatchLogsDecodedData, CloudWatchLogsEvent } from 'aws-lambda';

export class PayloadError extends Error {
  readonly code = 'ERR_ES_PAYLOAD';
}

/** The decoded DATA_MESSAGE, or undefined for a CONTROL_MESSAGE. */
export function decodePayload(event: CloudWatchLogsEvent): CloudWatchLogsDecodedData | undefined {
  const data = event?.awslogs?.data;
  if (typeof data !== 'string' || data.length === 0) {
    throw new PayloadError(
      'event.awslogs.data is missing: not a CloudWatch Logs subscription event',
    );
  }
  let json: string;
  try {
    json = gunzipSync(Buffer.from(data, 'base64')).toString('utf8');
  } catch (err) {
    throw new PayloadError(`event.awslogs.data is not base64 gzip (${(err as Error).message})`);
  }
  const decoded = JSON.parse(json) as CloudWatchLogsDecodedData;
  if (decoded.messageType === 'CONTROL_MESSAGE') return undefined;
  if (decoded.messageType !== 'DATA_MESSAGE' || !Array.isArray(decoded.logEvents)) {
    throw new PayloadError(`unexpected messageType ${JSON.stringify(decoded.messageType)}`);
  }
  return decoded;
}
