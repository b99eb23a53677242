import type { Socket } from 'node:net';
import { closeAfterAnswer } from '../proxy/upgrade.js';
import { clientErrorAnswer } from './client-error.js';
import type http from 'node:http';
import type https from 'node:https';

export interface ConnectionBounds {
  /** A connection that sends nothing this long after it was accepted (after its TLS handshake) is closed. */
  readonly firstByteMs: number;
  /** A connection's first request head must be complete this long after it was accepted (408 otherwise). */
  readonly firstHeadMs: number;
}

/**
 * Bounds a connection's life before its first request, which Node does not: its headers timer starts only with a
 * request line, so a connection that sent nothing, or one byte, was held for ever (issue 31: 290 silent TLS
 * connections were all open after a minute). Each connection gets two deadlines from accept (for TLS, from the end of
 * the handshake, which `handshakeTimeout` bounds): a first byte, and a complete first head. Both are cleared by the
 * first request or upgrade; from then on Node's own bounds apply (keepAliveTimeout between requests, headersTimeout
 * for later heads), and nothing bounds a response or an upgraded session once it has started.
 */
export function boundFirstRequest(server: http.Server | https.Server, bounds: ConnectionBounds, isTls: boolean): void {
  const armed = new WeakMap<Socket, () => void>();
  const arm = (socket: Socket): void => {
    // What the handshake read is not a request's byte; bytesRead counts what came after.
    const readBefore = socket.bytesRead;
    const firstByte = setTimeout(() => {
      if (socket.bytesRead === readBefore) socket.destroy();
    }, bounds.firstByteMs);
    const firstHead = setTimeout(() => {
      closeAfterAnswer(socket);
      socket.end(clientErrorAnswer(Object.assign(new Error('headers timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), bounds.firstHeadMs));
    }, bounds.firstHeadMs);
    firstByte.unref();
    firstHead.unref();
    const disarm = (): void => {
      clearTimeout(firstByte);
      clearTimeout(firstHead);
      armed.delete(socket);
    };
    socket.once('close', disarm);
    armed.set(socket, disarm);
  };
  const started = (socket: Socket): void => armed.get(socket)?.();
  server.on(isTls ? 'secureConnection' : 'connection', arm);
  server.on('request', (req) => started(req.socket));
  // A request with `Expect: 100-continue` comes as 'checkContinue' instead of 'request' (the gateway answers the 100
  // itself): without this its connection was given a 408 mid-response once the first head's bound passed.
  server.on('checkContinue', (req) => started(req.socket));
  server.on('upgrade', (req) => started(req.socket));
}
