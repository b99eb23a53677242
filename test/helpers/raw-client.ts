import net from 'node:net';
import tls from 'node:tls';

/**
 * A raw HTTP/1.1 connection, for upgrades and requests no ordinary client would send. Its waits have no deadline of
 * their own: what never arrives is mocha's timeout.
 */
export class RawConnection {
  private buffer = Buffer.alloc(0);
  private ended = false;
  private readonly waiters: Array<() => void> = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number, useTls = false): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = useTls
        ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, allowHalfOpen: true } as tls.ConnectionOptions, () =>
            resolve(new RawConnection(socket)),
          )
        : net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Half-close: no more bytes from us, but keep reading. */
  endWrite(): void {
    this.socket.end();
  }

  text(): string {
    return this.buffer.toString('utf8');
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Waits until the received text satisfies the predicate; fails if the connection ends first. */
  async until(predicate: (text: string) => boolean): Promise<string> {
    while (!predicate(this.text())) {
      if (this.ended) throw new Error(`connection ended; received: ${JSON.stringify(this.text())}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return this.text();
  }

  /** Waits until the other side ends or closes the connection; returns everything received. */
  async untilEnded(): Promise<string> {
    while (!this.ended) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.text();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

export function requestHead(method: string, path: string, headers: ReadonlyArray<readonly [string, string]>): string {
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}
