/**
 * Webhook payloads (`data`) for a job's transitions (§4.5).
 */
import { errorMessageFor, resultUrl, type FakeJob } from './jobs.js';
import type { WebhookEvent } from './webhooks.js';

const iso = (t: number): string => new Date(t).toISOString();

/** `job.processing`: pending → processing. */
export function processingEvent(job: FakeJob): { event: WebhookEvent; data: Record<string, unknown> } {
  return {
    event: 'job.processing',
    data: {
      job_request_id: job.id,
      status: 'processing',
      previous_status: 'pending',
      job_type: job.endpoint,
      started_at: iso(job.processingAt),
    },
  };
}

/** `job.completed` or `job.failed`: processing → done | error. */
export function terminalEvent(job: FakeJob, serverUrl: string): { event: WebhookEvent; data: Record<string, unknown> } {
  const o = job.outcome;
  if (o.outcome === 'done') {
    return {
      event: 'job.completed',
      data: {
        job_request_id: job.id,
        status: 'done',
        previous_status: 'processing',
        job_type: job.endpoint,
        result_url: job.resultExt ? resultUrl(serverUrl, job) : null,
        completed_at: iso(job.finishedAt),
        processing_time_ms: job.finishedAt - job.processingAt,
      },
    };
  }
  return {
    event: 'job.failed',
    data: {
      job_request_id: job.id,
      status: 'error',
      previous_status: 'processing',
      job_type: job.endpoint,
      error_code: o.code,
      error_message: o.message ?? errorMessageFor(o.code),
    },
  };
}
