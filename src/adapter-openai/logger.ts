// The logger moved to src/log/logger.ts (the service logs too); this path stays for its importers.
export { createLogger, isLogLevel, LOG_LEVELS, silentLogger, type Logger, type LogLevel } from '../log/logger.ts';
