import { STATUS_CODES } from 'node:http';

/**
 * An HTTP/1.1 response head (and body) as bytes for a raw socket: an upgraded connection, a connection the parser
 * refused, plain HTTP on the TLS port. The only place the project writes HTTP by hand; `headers` is flat like
 * rawHeaders.
 */
export function rawResponse(status: number, headers: readonly string[], body?: string, statusText?: string): string {
  let text = `HTTP/1.1 ${status} ${statusText ?? STATUS_CODES[status] ?? ''}\r\n`;
  for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
  if (body === undefined) return `${text}\r\n`;
  return `${text}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/** A final JSON answer on a raw socket, closing the connection: `{"error": status, "message": ...}` unless `body` is given. */
export function rawJsonAnswer(status: number, message: string, extraHeaders: readonly string[] = []): string {
  return rawResponse(status, [...extraHeaders, 'Content-Type', 'application/json'], JSON.stringify({ error: status, message }));
}
