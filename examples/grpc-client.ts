// The gRPC API from TypeScript with the repository's client (clients/typescript, over connect-es).
// Run from the repository root: node --import tsx examples/grpc-client.ts
import { createGenerationClient } from '../clients/typescript/src/index.ts';

const client = createGenerationClient(process.env.MLX_GRPC_URL ?? 'http://localhost:50051');

for await (const e of client.generate({
  prompt: { messages: [{ role: 'user', content: 'What is the capital of France?' }] },
  sampling: { maxTokens: 32, temperature: 0 },
})) {
  if (e.type === 'delta') process.stdout.write(e.text);
  if (e.type === 'finished') console.log(`\n[${e.finishReason}, ${e.usage.completionTokens} tokens]`);
}

// Two requests on one Generate stream; one of them cancelled.
const session = client.session();
// (A long story that only the cancel ends: a short one could finish before the cancel arrives.)
const story = session.generate({ prompt: 'Once upon a time', sampling: { maxTokens: 1000, ignoreEos: true } });
const colour = session.generate({ prompt: { messages: [{ role: 'user', content: 'Name a colour.' }] }, sampling: { maxTokens: 8, temperature: 0 } });
story.cancel();
console.log((await colour.completion()).text);
console.log((await story.completion()).finish.finishReason); // 'cancelled'
await session.close();

console.log(await client.tokenize('Hello world'));
