export { RateLimitScheduler, type Task, type TaskContext, type SchedulerStats } from './scheduler.js';
export { defaults, type SchedulerOptions, type ScheduleOptions, type RetryOptions } from './options.js';
export type * from './events.js';
