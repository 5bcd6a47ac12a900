// A LoRA adapter through the official OpenAI Node SDK: load it at run time (vLLM's
// /v1/load_lora_adapter), generate with it by naming it as the model, unload it.
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL ?? 'http://localhost:8080/v1', apiKey: 'unused' });
const path = process.env.LORA_PATH ?? './adapters/sql'; // mlx-lm's or PEFT's adapter directory, on the server's disk

console.log(await client.post('/load_lora_adapter', { body: { lora_name: 'sql', lora_path: path } }));
for (const m of (await client.models.list()).data) console.log(m.id, m.parent ? `(adapter of ${m.parent})` : '(base model)');

const reply = await client.chat.completions.create({
  model: 'sql',
  messages: [{ role: 'user', content: 'List the users who signed up today.' }],
  max_tokens: 32,
});
console.log(reply.model, reply.choices[0].message.content);

console.log(await client.post('/unload_lora_adapter', { body: { lora_name: 'sql' } }));
