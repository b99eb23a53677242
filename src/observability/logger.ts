import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import { batchedLines, type LineDestination } from './line-destination.js';

export type { Logger };

/**
 * Every place a secret could appear in a log record. Code must not log secrets in the first place
 * (invariants.md 7); this is the second line of defence.
 */
const REDACTED_PATHS = [
  'token',
  'password',
  'secret',
  'applicationCredentialSecret',
  'headers.authorization',
  'headers["x-auth-token"]',
  'headers["x-subject-token"]',
  'headers["sec-websocket-protocol"]',
  'req.headers.authorization',
  'req.headers["x-auth-token"]',
  'req.headers["sec-websocket-protocol"]',
  '*.token',
  '*.password',
  '*.secret',
  '*.applicationCredentialSecret',
];

export function createLogger(level: LevelWithSilent, out: NodeJS.WritableStream | DestinationStream): Logger {
  const options = {
    level,
    base: { name: 'zun-gateway' },
    redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return pino(options, out as DestinationStream);
}

/**
 * The process's stdout as one batching writer shared by the log and the audit trail (one writer per file
 * descriptor, so lines never interleave).
 */
export function stdoutDestination(): LineDestination {
  return batchedLines(1);
}

/** A logger that drops everything: for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
