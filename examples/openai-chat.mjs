// Stream a chat answer through the official OpenAI Node SDK (npm install openai).
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL ?? 'http://localhost:8080/v1', apiKey: 'unused' });

const stream = await client.chat.completions.create({
  model: 'default',
  messages: [{ role: 'user', content: 'Name three planets.' }],
  max_tokens: 32,
  stream: true,
});
for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta.content ?? '');
process.stdout.write('\n');
