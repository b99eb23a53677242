import v8 from 'node:v8';

/**
 * V8 sets the old generation's next collection limit as the live size times a growing factor it derives from how
 * fast the program allocates on the JavaScript heap. A gateway that idles for a minute or two gets a memory-reducing
 * collection with a factor near 1.1: the limit lands about 9 MB above a 45 MB live heap, less than the 16 MB young
 * generation. Byte streams (exec, attach, cp, logs) then allocate mostly outside the JavaScript heap, in Buffers, so
 * V8 keeps judging the program slow and keeps the factor low, and every young collection (one per 32 MB of Buffers)
 * finds the old generation "close to its limit" and starts a full mark of the whole heap. Measured on a long-running
 * gateway: 7 to 12 full collections per 256 MB through `docker run -i`, two to three times the CPU of a fresh process
 * (docs/performance.md, step 10). A fixed factor of 2 (the limit at twice the live heap) ends that: no full
 * collection during the same stream, fresh or after an idle spell. A factor of 1.5 was not enough (three full
 * collections per stream, started by V8's marking task with 38 MB of headroom). A fresh process already runs with a
 * factor of up to 4, which is what V8 picks while a program loads; 2 is the smaller price in memory.
 */
export const HEAP_GROWING_PERCENT = 100;

/**
 * Applied before the gateway's modules load, so that every old-generation limit V8 computes uses it. V8 reads the flag
 * each time it computes a limit, so setting it at run time takes effect (heap-headroom.test.ts checks it in `serve`);
 * here it needs no change to how the gateway is started (npm start, the image's entrypoint, the installed binary).
 */
export function keepOldGenerationHeadroom(): void {
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
