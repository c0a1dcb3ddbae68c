// Bundles the extension into dist/extension.js (vscode stays external: the host provides it).
import * as esbuild from 'esbuild';

const watch = process.argv.includes('--watch');
const options = {
  entryPoints: ['src/extension.ts'],
  bundle: true,
  outfile: 'dist/extension.js',
  external: ['vscode'],
  format: 'cjs',
  platform: 'node',
  target: 'node18',
  minify: !watch,
  sourcemap: watch,
  logLevel: 'info',
};
if (watch) await (await esbuild.context(options)).watch();
else await esbuild.build(options);
