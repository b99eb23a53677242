import { isCertificateRefusal, systemCode } from '../errors.js';
import type { Upstream } from '../proxy/upstream.js';
import { engineJson } from './engine.js';

/** GET /_ping: the engine answers (a refused client certificate or CA is the gateway's configuration: blocking). */
export async function engineHealth(engine: Upstream): Promise<{ ok: boolean; detail: string; blocking?: boolean }> {
  try {
    const answer = await engineJson(engine, 'GET', '/_ping');
    return { ok: answer.status === 200, detail: answer.status === 200 ? 'engine answers' : `engine answered HTTP ${answer.status}` };
  } catch (err) {
    const code = systemCode(err);
    return { ok: false, detail: `engine unreachable (${code !== '' ? code : (err as Error).message})`, ...(isCertificateRefusal(err) ? { blocking: true } : {}) };
  }
}
