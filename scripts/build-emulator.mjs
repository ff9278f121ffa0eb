// Bundle the emulator into one file (Node built-ins only) for the image and for local runs.
import { build } from 'esbuild';
await build({
  entryPoints: ['emulator/src/server.ts'],
  outfile: 'dist/emulator/emulator.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'warning',
});
