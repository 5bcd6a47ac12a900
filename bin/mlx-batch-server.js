#!/usr/bin/env node
// Runs the compiled CLI (dist/, built from src/ by scripts/setup.sh or `npm run build`).
import { existsSync } from 'node:fs';

const [major] = process.versions.node.split('.').map(Number);
if (major < 22) {
  console.error(`mlx-batch-server needs Node.js 22 or newer (this is ${process.version}); scripts/setup.sh installs it`);
  process.exit(1);
}
const entry = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('mlx-batch-server: dist/ is missing; run `npm run build` (scripts/setup.sh does)');
  process.exit(1);
}
await import(entry.href);
