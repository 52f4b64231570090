/**
 * modelbeam-scheduler: a header-driven rate-limit scheduler, an asynchronous
 * job client for ModelBeam, and a crash-safe batch runner.
 */
export * from './engine/index.js';
export * from './errors/index.js';
export { parseRateLimitHeaders, type ParseOptions } from './headers/index.js';
export type { RateLimitSnapshot, WindowSnapshot, WindowName, HeaderSource } from './headers/index.js';
export { MemoryStore, type Store, type BudgetConfig, type BudgetView, type WindowView } from './store/index.js';
export { systemClock, type Clock, type Random } from './internal/clock.js';
export type { Logger } from './internal/logger.js';
export * from './modelbeam/index.js';
export * from './batch/index.js';
