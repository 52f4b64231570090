/**
 * `modelbeam-scheduler/redis`: the shared store, in its own entry point so
 * that users of the in-process scheduler never load ioredis.
 */
export { RedisStore, type RedisStoreEvents, type RedisStoreOptions, type RedisStoreStats } from './store/redis-store.js';
export { RedisSpendLedger } from './store/spend-ledger.js';
