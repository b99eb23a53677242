#!/usr/bin/env node
import { keepOldGenerationHeadroom } from './gateway/heap-headroom.js';

/*
 * The entry point. `serve` pins V8's heap growing factor before any other module loads (gateway/heap-headroom.ts):
 * the command line's own modules (undici, zod, yaml, pino) already cause the first full collection, whose limit the
 * gateway then starts from. Everything else is the command line (cli.ts).
 */
if (process.argv[2] === 'serve') keepOldGenerationHeadroom();
await import('./cli.js');
