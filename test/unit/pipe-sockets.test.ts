import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { pipeSockets } from '../../src/proxy/pipe-sockets.js';

/** One end of an upgraded connection: what is pushed is "read from the network", writes are recorded, and may be held. */
class End extends Duplex {
  readonly writes: Buffer[][] = [];
  hold = false;
  private readonly held: Array<() => void> = [];

  override _read(): void {}

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: () => void): void {
    this.writes.push(chunks.map((c) => c.chunk));
    if (this.hold) this.held.push(callback);
    else callback();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this._writev([{ chunk }], callback);
  }

  /** The network took everything written so far. */
  release(): void {
    this.hold = false;
    for (const done of this.held.splice(0)) done();
  }
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const KB16 = Buffer.alloc(16 * 1024, 1);

describe('pipeSockets (upgraded sessions: exec, attach, port-forward)', () => {
  it('the chunks read in one loop turn leave in one write, in order', async () => {
    const client = new End();
    const upstream = new End();
    pipeSockets(client, upstream);
    await turn();
    client.push(Buffer.from('a'));
    client.push(Buffer.from('b'));
    client.push(Buffer.from('c'));
    await turn();
    await turn();
    assert.equal(upstream.writes.length, 1, 'one write for the three chunks of one turn');
    assert.equal(Buffer.concat(upstream.writes[0] ?? []).toString(), 'abc');
    client.push(Buffer.from('d'));
    await turn();
    await turn();
    assert.deepEqual(upstream.writes.map((w) => Buffer.concat(w).toString()), ['abc', 'd']);
  });

  it('keeps reading while less than 256 KB wait for a slow side, stops beyond, and reads again once it is drained', async () => {
    const client = new End();
    const upstream = new End();
    upstream.hold = true;
    pipeSockets(client, upstream);
    await turn();
    for (let i = 0; i < 15; i += 1) client.push(KB16);
    await turn();
    assert.equal(client.isPaused(), false, '240 KB waiting: the client is still read');
    client.push(KB16);
    client.push(KB16);
    await turn();
    assert.equal(client.isPaused(), true, '256 KB waiting (and a record more read): reading stops');
    upstream.release();
    await turn();
    await turn();
    assert.equal(client.isPaused(), false, 'drained: reading goes on');
    const written = upstream.writes.reduce((n, w) => n + w.reduce((m, c) => m + c.length, 0), 0);
    assert.equal(written, 17 * KB16.length, 'every byte arrived, none twice');
  });

  it("the other side's last bytes reach the client when its reset or error comes in the same turn", async () => {
    const client = new End();
    const upstream = new End();
    let closed = 0;
    pipeSockets(client, upstream, () => (closed += 1));
    await turn();
    upstream.push(Buffer.from('last words'));
    upstream.destroy(new Error('connection reset'));
    await turn();
    assert.equal(Buffer.concat(client.writes.flat()).toString(), 'last words');
    assert.equal(client.destroyed, true);
    assert.equal(closed, 1);
  });

  it('each direction ends on its own: the client ending its side ends the upstream\'s writable side only', async () => {
    const client = new End();
    const upstream = new End();
    pipeSockets(client, upstream);
    await turn();
    const finished = new Promise<void>((r) => upstream.once('finish', () => r()));
    client.push(Buffer.from('last'));
    client.push(null);
    await finished;
    assert.equal(Buffer.concat(upstream.writes.flat()).toString(), 'last');
    assert.equal(upstream.destroyed, false, 'the upstream can still answer (kubectl exec -i after stdin ends)');
    upstream.push(Buffer.from('answer'));
    await turn();
    await turn();
    assert.equal(Buffer.concat(client.writes.flat()).toString(), 'answer');
  });
});
