// A command-line demo of the engine without the server: fetches the model if needed, starts the
// engine process, and streams one chat answer to stdout through the text layer (the engine works
// in token ids). `node --import tsx scripts/demo.ts [--model M] [prompt]`
import { Command } from 'commander';
import { DEFAULT_ENGINE_OPTIONS } from '../src/engine/engine-options.ts';
import { EngineClient } from '../src/engine/engine-client.ts';
import { defaultSamplingParams } from '../src/engine/sampling-params.ts';
import { defaultCacheDir, resolveModel } from '../src/model-source/model-source.ts';
import type { GenerateRequest } from '../src/text/generation.ts';
import { loadTokenizer } from '../src/text/load-tokenizer.ts';
import { promptTokenIds } from '../src/text/prompt-tokens.ts';
import { TextRequest } from '../src/text/text-request.ts';

const program = new Command()
  .name('engine-demo')
  .argument('[prompt...]', 'what to ask', ['What is the capital of France?'])
  .option('--model <spec>', 'model path, Hugging Face id, or the default alias')
  .option('--max-tokens <n>', 'tokens to generate', (v) => Number.parseInt(v, 10), 128)
  .option('--temperature <t>', 'sampling temperature (0 = greedy)', Number.parseFloat, 0)
  .parse();
const opts = program.opts<{ model?: string; maxTokens: number; temperature: number }>();
const prompt = (program.args.length ? program.args : ['What is the capital of France?']).join(' ');

const cacheDir = defaultCacheDir();
const model = await resolveModel(opts.model, { cacheDir });
const engine = new EngineClient({ model, cacheDir, engine: DEFAULT_ENGINE_OPTIONS });
process.stderr.write(`loading ${model.id} …\n`);
const [info, tokenizer] = await Promise.all([engine.start(), loadTokenizer(model)]);
const started = performance.now();
let firstToken = 0;
const request: GenerateRequest = {
  id: 'demo',
  input: { kind: 'chat', messages: [{ role: 'user', content: prompt }] },
  sampling: { ...defaultSamplingParams(), temperature: opts.temperature, maxTokens: opts.maxTokens },
};
const text = new TextRequest(tokenizer, request, promptTokenIds(tokenizer, request.input, opts.maxTokens, info));
const events = (async function* () {
  for await (const engineEvent of engine.generate(text.engineRequest(request.id))) {
    const accepted = text.accept(engineEvent);
    yield* accepted.events;
    if (accepted.cancel) return;
  }
})();
for await (const e of events) {
  if (e.type === 'delta') {
    firstToken ||= performance.now();
    process.stdout.write(e.text);
  } else if (e.type === 'finished') {
    const secs = (performance.now() - firstToken) / 1000;
    process.stderr.write(
      `\n[${e.finishReason}; ${e.usage.promptTokens} prompt + ${e.usage.completionTokens} completion tokens; ` +
        `first token after ${((firstToken - started) / 1000).toFixed(2)} s; ${((e.usage.completionTokens - 1) / secs).toFixed(1)} tok/s]\n`,
    );
  } else if (e.type === 'error') {
    process.stderr.write(`\nerror: ${e.message}\n`);
    process.exitCode = 1;
  }
}
await engine.stop();
