// The tenants' page (src/ui) for `npm run build`: the script and the stylesheet bundled by esbuild (everything from
// npm, nothing from a CDN), named by a hash of their content so the gateway can let browsers cache them for a year,
// and index.html written with those names. Type-checking is tsc's (src/ui/tsconfig.json), run before this.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const out = 'dist/src/ui';
rmSync(path.join(out, 'assets'), { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const entries = { js: 'src/ui/app.ts', css: 'src/ui/style.css' };
const result = await build({
  entryPoints: Object.values(entries),
  outdir: path.join(out, 'assets'),
  entryNames: '[name]-[hash]',
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});

const built = (entry) => {
  const found = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint === entry);
  if (found === undefined) throw new Error(`esbuild wrote nothing for ${entry}`);
  return path.basename(found[0]);
};
const html = readFileSync('src/ui/index.html', 'utf8').replace('%APP_JS%', built(entries.js)).replace('%APP_CSS%', built(entries.css));
writeFileSync(path.join(out, 'index.html'), html);
