/**
 * modelbeam-scheduler: a header-driven rate-limit scheduler, an asynchronous
 * job client for ModelBeam, and a crash-safe batch runner.
 *
 * This entry point exports what users need, by name; internals (the poll
 * planner, the journal, the id table, status parsers) are not part of it.
 * `modelbeam-scheduler/redis` holds the shared store,
 * `modelbeam-scheduler/otel` the OpenTelemetry metrics and
 * `modelbeam-scheduler/testing` the fake ModelBeam server.
 * @module
 */

// ---- the scheduler -------------------------------------------------------------
export { RateLimitScheduler, type Task, type TaskContext, type SchedulerStats } from './engine/scheduler.js';
export { defaults as SCHEDULER_DEFAULTS, type SchedulerOptions, type ScheduleOptions, type RetryOptions } from './engine/options.js';
export type {
  BudgetUpdatedEvent,
  DailyQuotaExhaustedEvent,
  DispatchedEvent,
  FailedEvent,
  IdleEvent,
  OutcomeUnknownEvent,
  PausedEvent,
  QueuedEvent,
  RateLimitedEvent,
  ResumedEvent,
  RetryReason,
  RetryingEvent,
  SchedulerEvents,
  StoreEvent,
  SucceededEvent,
  TypedEmitter,
} from './engine/events.js';

// ---- rate-limit headers, stores, injection points --------------------------------
export { parseRateLimitHeaders, type ParseOptions } from './headers/index.js';
export type { RateLimitSnapshot, WindowSnapshot, WindowName, HeaderSource } from './headers/index.js';
export { MemoryStore } from './store/memory-store.js';
export type {
  BlockReason,
  BudgetConfig,
  BudgetView,
  Outcome,
  ReserveResult,
  SettleResult,
  Store,
  Ticket,
  WindowView,
} from './store/types.js';
export type { Clock, Random } from './internal/clock.js';
export type { Logger } from './internal/logger.js';

// ---- diagnostics channels and metrics ----------------------------------------------
export {
  ANSWERED_CHANNEL,
  CHANNEL_PREFIX,
  SPEND_CHANNEL,
  channelName,
  type AnsweredEvent,
  type ChannelMessage,
  type ChannelSource,
} from './diagnostics/channels.js';
export { METRICS, type MetricDefinition, type MetricKey, type MetricKind } from './metrics/definitions.js';
export type { ClientLike, SchedulerLike } from './metrics/mapping.js';
export { PrometheusMetrics, PROMETHEUS_CONTENT_TYPE, type MetricsServer, type MetricsServerOptions } from './metrics/prometheus.js';

// ---- errors ----------------------------------------------------------------------
export { SchedulerError, isSchedulerError, type ErrorCode } from './errors/scheduler-error.js';
export { HttpError, type HttpErrorInit } from './errors/http-error.js';
export { AuthenticationError } from './errors/authentication-error.js';
export { NotFoundError } from './errors/not-found-error.js';
export { ValidationError, type FieldErrors } from './errors/validation-error.js';
export { ParamsValidationError } from './errors/params-validation-error.js';
export { InsufficientBalanceError } from './errors/insufficient-balance-error.js';
export { DailyQuotaExhaustedError } from './errors/daily-quota-exhausted-error.js';
export { RetriesExhaustedError } from './errors/retries-exhausted-error.js';
export { OutcomeUnknownError } from './errors/outcome-unknown-error.js';
export { TimeoutError } from './errors/timeout-error.js';
export { QueueClosedError } from './errors/queue-closed-error.js';
export { StoreUnavailableError } from './errors/store-unavailable-error.js';
export { JobFailedError, type JobFailedErrorInit } from './errors/job-failed-error.js';
export { WebhookVerificationError, type WebhookRejectReason } from './errors/webhook-verification-error.js';
export { BatchSetupError } from './errors/batch-setup-error.js';
export { PriceUnavailableError } from './errors/price-unavailable-error.js';
export { SpendCapReachedError } from './errors/spend-cap-reached-error.js';

// ---- the ModelBeam client ------------------------------------------------------------
export { ModelBeamClient, CLIENT_DEFAULTS } from './modelbeam/index.js';
export type {
  CallOptions,
  GenerateOptions,
  GenerateResult,
  JobRetryOptions,
  LimitScope,
  Model,
  ModelBeamClientOptions,
  ModelsFilter,
  PollingOptions,
  SubmitOptions,
  SubmitResult,
  WaitOptions,
  WebhookClientOptions,
  DownloadOptions,
} from './modelbeam/index.js';
export { KNOWN_ENDPOINTS, TYPED_ENDPOINTS, UNTYPED_ENDPOINTS, validateParams } from './modelbeam/endpoints.js';
export type {
  EndpointParams,
  FileInput,
  Img2ImgParams,
  Img2TxtParams,
  Img2VideoParams,
  KnownEndpoint,
  Lora,
  NamedFile,
  ParamsOf,
  TranscribeParams,
  Txt2AudioParams,
  Txt2EmbeddingParams,
  Txt2ImgParams,
  Txt2MusicParams,
  Txt2VideoParams,
  TypedEndpoint,
  UntypedEndpoint,
} from './modelbeam/endpoints.js';
export { JOB_ERROR_CODES, isRetryableJobError } from './modelbeam/jobs.js';
export type { JobErrorCode, JobResult, JobState, JobStatus, RetryableJobErrorCode } from './modelbeam/jobs.js';
export {
  DELIVERY_HEADER,
  EVENT_HEADER,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  createWebhookHandler,
  listenWebhookServer,
  verifyWebhook,
} from './modelbeam/webhooks.js';
export type {
  VerifyWebhookOptions,
  WebhookEvent,
  WebhookHandler,
  WebhookHandlerOptions,
  WebhookHeaders,
  WebhookProcessResult,
  WebhookRejection,
  WebhookServer,
  WebhookServerOptions,
} from './modelbeam/webhooks.js';
export type {
  BalanceExhaustedEvent,
  ClientOutcomeUnknownEvent,
  ClientStats,
  CompletedEvent,
  JobFailedEvent,
  LearnedVia,
  ModelBeamClientEvents,
  PollFailedEvent,
  PolledEvent,
  ResubmittedEvent,
  StatusChangedEvent,
  SubmissionsResumedEvent,
  SubmittedEvent,
  WebhookAcceptedEvent,
  WebhookDuplicateEvent,
  WebhookFallbackEvent,
  WebhookRejectedEvent,
  WebhookUnknownJobEvent,
} from './modelbeam/events.js';

// ---- batch runs ----------------------------------------------------------------------
export { runBatch, BATCH_DEFAULTS, type Batch } from './batch/run-batch.js';
export { readJsonlLines } from './batch/input.js';
export { formatSummary, type FormatSummaryOptions } from './batch/summary.js';
export type { JournalRecord, SubmittingRecord, SubmittedRecord, ReleasedRecord, TerminalRecord } from './batch/journal.js';
export type {
  BatchClient,
  BatchScheduler,
  BatchJobResult,
  BatchInput,
  RawLine,
  BatchResult,
  BatchSummary,
  BatchProgress,
  RunBatchOptions,
  JobOutput,
  ItemError,
  InputErrorKind,
  TerminalState,
  StopReason,
  StopInfo,
  InvalidLine,
  StateCounts,
  SpendSummary,
} from './batch/types.js';

// ---- estimates and spend caps --------------------------------------------------------
export type { BatchEstimate, EstimateItem, EstimateLimits, EstimateLineError, EstimateOptions } from './modelbeam/estimate.js';
export { MemorySpendLedger, type SpendLedger, type SpendReservation } from './store/spend-ledger.js';
