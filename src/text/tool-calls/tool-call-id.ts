// Ids for the calls the server finds in model output. Clients echo them back in `tool` messages,
// so they only need to be unique within a conversation; random ids make them so without state.
import { randomInt } from 'node:crypto';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomAlphanumeric(length: number): string {
  let id = '';
  for (let i = 0; i < length; i++) id += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return id;
}

/** An OpenAI-style id: `call_` and 24 random letters and digits. */
export function defaultToolCallId(): string {
  return `call_${randomAlphanumeric(24)}`;
}

/** Nine letters and digits: Mistral's chat templates refuse any other tool call id. */
export function mistralToolCallId(): string {
  return randomAlphanumeric(9);
}
