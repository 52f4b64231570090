import { SchedulerError } from './scheduler-error.js';

/** Why a webhook delivery was refused. */
export type WebhookRejectReason =
  | 'missing-signature'
  | 'missing-timestamp'
  | 'malformed-timestamp'
  | 'malformed-signature'
  | 'bad-signature'
  | 'stale'
  | 'future'
  | 'malformed-body'
  | 'too-large'
  | 'body-timeout'
  | 'method-not-allowed';

const STATUS: Record<WebhookRejectReason, number> = {
  'missing-signature': 401,
  'missing-timestamp': 401,
  'malformed-timestamp': 401,
  'malformed-signature': 401,
  'bad-signature': 401,
  stale: 401,
  future: 401,
  'malformed-body': 400,
  'too-large': 413,
  'body-timeout': 408,
  'method-not-allowed': 405,
};

/**
 * A webhook delivery failed verification (forged, stale, malformed). The
 * message never contains the secret or the expected signature.
 */
export class WebhookVerificationError extends SchedulerError {
  readonly reason: WebhookRejectReason;
  /** The HTTP status the receiver answers with. */
  readonly status: number;

  constructor(reason: WebhookRejectReason, message: string) {
    super('WEBHOOK_INVALID', message);
    this.reason = reason;
    this.status = STATUS[reason];
  }
}
