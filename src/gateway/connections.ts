import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** What is in flight, so shutdown can wait for requests and then close upgraded sessions. */
export class ConnectionTracker {
  private requests = 0;
  private readonly upgraded = new Set<Duplex>();
  private readonly sockets = new Set<Duplex>();
  private drainedWaiters: Array<() => void> = [];

  trackRequest(_req: IncomingMessage, res: ServerResponse): void {
    this.requests += 1;
    res.once('close', () => {
      this.requests -= 1;
      if (this.requests === 0) this.notifyDrained();
    });
  }

  trackUpgrade(socket: Duplex): void {
    this.upgraded.add(socket);
    socket.once('close', () => this.upgraded.delete(socket));
  }

  /**
   * Every accepted TCP connection, TLS handshakes included. The http server's closeAllConnections does not see a
   * TLS connection whose client closed its side before sending a request (seen: it stays half-open and keeps
   * server.close() waiting), so shutdown ends whatever is left.
   */
  trackSocket(socket: Duplex): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  closeAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  get inFlight(): { requests: number; upgraded: number } {
    return { requests: this.requests, upgraded: this.upgraded.size };
  }

  /** Resolves when no ordinary request is in flight, or after `ms`. */
  drain(ms: number): Promise<void> {
    if (this.requests === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.drainedWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  closeUpgraded(): void {
    for (const socket of this.upgraded) socket.destroy();
  }

  private notifyDrained(): void {
    const waiters = this.drainedWaiters;
    this.drainedWaiters = [];
    for (const w of waiters) w();
  }
}
