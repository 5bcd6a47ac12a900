// The server's one logger (pino): one JSON object a line on stderr, e.g.
//   {"level":"info","time":"2026-01-01T12:00:00.000Z","pid":42,"requestId":"req_…","msg":"request finished",…}
// so log shippers index the fields instead of parsing text. Per-request lines carry the request
// id (child loggers); prompts and generated text are never logged unless the operator asks
// (--log-prompts). Lines are written synchronously: a line logged just before process.exit (a
// fatal error, the end of a shutdown) is not lost.
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type Logger = PinoLogger;

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** A logger at `level` writing to `destination` (default: stderr). */
export function createLogger(level: LogLevel | 'silent', destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Level names, not pino's numbers: readable without a pretty-printer.
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 2, sync: true }),
  );
}

export const silentLogger: Logger = createLogger('silent');
