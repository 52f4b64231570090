/**
 * The client's events (one payload object each) and its stats shape.
 * Events observe; they never steer.
 */
import type { SchedulerStats } from '../engine/scheduler.js';
import type { InsufficientBalanceError } from '../errors/insufficient-balance-error.js';
import type { WebhookRejectReason } from '../errors/webhook-verification-error.js';

/** How the client learned a job's outcome. */
export type LearnedVia = 'poll' | 'webhook' | 'inline';

export interface SubmittedEvent {
  requestId: string;
  endpoint: string;
  model: string | undefined;
  /** 1 for a first submission; higher for `generate()` resubmissions. */
  attempt: number;
}
export interface CompletedEvent {
  requestId: string;
  endpoint: string | undefined;
  /** Submit response → outcome known, when the submission time is known. */
  durationMs: number | undefined;
  polls: number;
  via: LearnedVia;
}
export interface JobFailedEvent {
  requestId: string;
  endpoint: string | undefined;
  code: string;
  message: string | undefined;
  retryable: boolean;
  via: LearnedVia;
}
export interface ResubmittedEvent {
  endpoint: string;
  /** `job-failed`: a retryable job error; `outcome-unknown`: the previous submission's response was lost. */
  reason: 'job-failed' | 'outcome-unknown';
  /** The failed job, when its id is known. */
  previousRequestId: string | undefined;
  code: string | undefined;
  /** The billed submission about to be made (2 for the first resubmission). */
  attempt: number;
  resubmissions: number;
}
export interface ClientOutcomeUnknownEvent {
  endpoint: string;
  /** The submission (1-based) whose outcome is unknown. */
  attempt: number;
  /** Whether `generate()` is about to submit again (`resubmitOnUnknownOutcome`). */
  resubmitting: boolean;
  error: unknown;
}
export interface WebhookRejectedEvent {
  reason: WebhookRejectReason;
  status: number;
  remoteAddress: string | undefined;
}
export interface WebhookAcceptedEvent {
  requestId: string | undefined;
  event: string;
  deliveryId: string | undefined;
}
export interface WebhookDuplicateEvent {
  requestId: string | undefined;
  event: string;
  deliveryId: string | undefined;
  /** What matched: the delivery id, or the (request id, event) pair. */
  by: 'delivery-id' | 'request-event';
}
export interface WebhookUnknownJobEvent {
  requestId: string | undefined;
  event: string;
  deliveryId: string | undefined;
}
export interface BalanceExhaustedEvent {
  endpoint: string;
  error: InsufficientBalanceError;
  action: 'wait' | 'reject';
}
export interface SubmissionsResumedEvent {
  reason: 'manual' | 'balance';
  balance: number | undefined;
}
export interface PolledEvent {
  requestId: string;
  status: string;
  progress: number | undefined;
  /** Polls of this job so far. */
  polls: number;
  /** When the next poll is planned, if the job is still running. */
  nextPollInMs: number | undefined;
}
export interface PollFailedEvent {
  requestId: string;
  error: unknown;
  /** When it is polled again; undefined when the client gave up (404s, 4xx, 401). */
  retryInMs: number | undefined;
}
export interface StatusChangedEvent {
  requestId: string;
  status: string;
  progress: number | undefined;
  via: LearnedVia;
}
export interface WebhookFallbackEvent {
  /** True: deliveries stopped arriving, polling took over. False: deliveries are back. */
  active: boolean;
  reason: string;
}

/** Every event of the client. */
export interface ModelBeamClientEvents {
  submitted: SubmittedEvent;
  completed: CompletedEvent;
  jobFailed: JobFailedEvent;
  resubmitted: ResubmittedEvent;
  outcomeUnknown: ClientOutcomeUnknownEvent;
  webhookAccepted: WebhookAcceptedEvent;
  webhookDuplicate: WebhookDuplicateEvent;
  webhookRejected: WebhookRejectedEvent;
  webhookUnknownJob: WebhookUnknownJobEvent;
  webhookFallback: WebhookFallbackEvent;
  balanceExhausted: BalanceExhaustedEvent;
  submissionsResumed: SubmissionsResumedEvent;
  polled: PolledEvent;
  pollFailed: PollFailedEvent;
  statusChanged: StatusChangedEvent;
}

export type Emit = <K extends keyof ModelBeamClientEvents>(name: K, event: ModelBeamClientEvents[K]) => void;

/** A snapshot of the client. */
export interface ClientStats {
  /** Jobs created (submissions answered with a request id). */
  submitted: number;
  /** Jobs that finished `done`. */
  completed: number;
  /** Jobs that finished `error`. */
  failed: number;
  /** Status requests sent (every attempt, 429s included). */
  polls: number;
  /** `polls / (completed + failed)`. */
  pollsPerJob: number;
  webhooksAccepted: number;
  webhooksRejected: number;
  webhooksDuplicate: number;
  webhooksUnknownJob: number;
  /** Billed resubmissions made by `generate()`. */
  resubmissions: number;
  /** Submissions whose response was lost (the job may exist). */
  outcomeUnknown: number;
  /** Of those, how many were submitted again: a duplicate job may exist. */
  possibleDuplicates: number;
  /** 429 responses this client received. */
  '429s': number;
  /** Jobs submitted (or waited on) whose outcome is not known yet. */
  inFlightJobs: number;
  /** Of those, jobs someone is waiting on (polled or awaiting a webhook). */
  waitingJobs: number;
  /** HTTP requests sent to the API, every attempt counted. */
  requests: { total: number; submits: number; polls: number; other: number };
  /** `requests.total / completed`. */
  requestsPerCompletedJob: number;
  pollErrors: number;
  submissionsPaused: boolean;
  /** A webhook is configured and deliveries are trusted (polling is a safety net). */
  webhookMode: boolean;
  /** A webhook is configured but deliveries stopped: polling took over. */
  webhookFallback: boolean;
  /**
   * Learned durations (the tracked high quantile) per endpoint and endpoint +
   * model, from jobs this client submitted (not from ids handed to `wait()`).
   * Bounded by `polling.maxIntervalMs × overdueFactor`: no poll waits longer
   * than that anyway.
   */
  durations: Record<string, { expectedMs: number; observations: number }>;
  scheduler: SchedulerStats;
}
