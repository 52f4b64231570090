/**
 * The slice of a pino logger that the library uses. Any pino logger fits; so
 * does any object with these methods. The default is silent.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
  /** pino's level check. Without it every level counts as enabled. */
  isLevelEnabled?(level: string): boolean;
}

const noop = (): void => {};

export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
  isLevelEnabled: () => false,
};

/**
 * Whether `logger` writes debug lines. Hot paths ask before building a log
 * object, so that a disabled level costs no allocation. Asked per call, not
 * cached: a pino logger's level can change at run time.
 */
export function isDebugEnabled(logger: Logger): boolean {
  return logger.isLevelEnabled === undefined || logger.isLevelEnabled('debug');
}

/** Paths that pino must censor wherever a caller logs requests or options. */
export const REDACT_PATHS = [
  'apiKey',
  '*.apiKey',
  'secret',
  '*.secret',
  'webhookSecret',
  '*.webhookSecret',
  'authorization',
  'headers.authorization',
  'headers.Authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
  'req.headers.authorization',
];
