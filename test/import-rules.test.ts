// The process boundary as the code enforces it: the server process, the REST adapter and the text
// layer never reach node-mlx or the native kernels, and no import cycle exists
// (.dependency-cruiser.cjs). The rule is also shown to catch a violation, so it cannot pass vacuously.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const repo = join(import.meta.dirname, '..');
const depcruise = join(repo, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruiser.mjs');

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
  via?: { name: string }[];
}

function cruise(root: string, dirs = ['src']): Violation[] {
  const r = spawnSync(process.execPath, [depcruise, ...dirs, '--config', '.dependency-cruiser.cjs', '--output-type', 'json'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.ok(r.stdout, `depcruise printed nothing: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { summary: { violations: Violation[]; totalCruised: number } };
  assert.ok(out.summary.totalCruised > 100, 'the whole source tree was cruised');
  return out.summary.violations;
}

test('the source tree keeps the import rules', () => {
  // The web playground too: it may import only the generated code of src/.
  const violations = cruise(repo, ['src', 'web']);
  assert.deepEqual(
    violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`),
    [],
  );
});

test('a module of the text layer that reaches the engine runtime breaks the rule', () => {
  const root = mkdtempSync(join(tmpdir(), 'import-rules-'));
  try {
    for (const entry of ['src', 'types', 'tsconfig.json', 'tsconfig.typecheck.json', '.dependency-cruiser.cjs']) {
      cpSync(join(repo, entry), join(root, entry), { recursive: true });
    }
    symlinkSync(join(repo, 'node_modules'), join(root, 'node_modules'));
    // Reaches MLX only through load-model.ts's own imports: the rule follows them.
    writeFileSync(join(root, 'src', 'text', 'violation.ts'), "export { loadModel } from '../engine/load-model.ts';\n");
    const violations = cruise(root);
    assert.ok(violations.length > 0);
    for (const v of violations) {
      assert.equal(v.rule.name, 'server-loads-no-engine-runtime');
      assert.equal(v.from, 'src/text/violation.ts');
    }
    assert.ok(violations.some((v) => v.to === 'src/engine/mlx.ts'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
