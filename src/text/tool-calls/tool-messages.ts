// Chat messages with tool calls and tool results, made ready for the model's chat template. A
// template with tools gets them in the shape transformers gives templates; a template without
// tools (SmolLM2's ChatML) knows only system, user and assistant, so the server writes the tools,
// the calls and the results into those roles' text itself.
import { argumentsValue, renderToolCalls } from './call-syntax.ts';
import { toolSystemPrompt } from './tool-prompt.ts';
import type { TemplateMessage, ToolCallFormat, ToolChatMessage, ToolDefinition } from './tool-types.ts';

function toolResponse(content: string): string {
  return `<tool_response>\n${content}\n</tool_response>`;
}

function withCalls(m: ToolChatMessage, format: ToolCallFormat): string {
  if (!m.toolCalls?.length) return m.content;
  const calls = renderToolCalls(m.toolCalls, format);
  return m.content ? `${m.content}\n${calls}` : calls;
}

/** The messages in plain roles: calls rendered into the assistant's text, results as user turns. */
function inPlainRoles(messages: readonly ToolChatMessage[], format: ToolCallFormat): TemplateMessage[] {
  const out: TemplateMessage[] = [];
  let previousWasTool = false;
  for (const m of messages) {
    if (m.role === 'tool') {
      const last = out.at(-1);
      // Results of one turn's calls form one user turn, as the templates with tools render them.
      if (previousWasTool && last) last.content += `\n${toolResponse(m.content)}`;
      else out.push({ role: 'user', content: toolResponse(m.content) });
      previousWasTool = true;
      continue;
    }
    previousWasTool = false;
    out.push({ role: m.role, content: m.role === 'assistant' ? withCalls(m, format) : m.content });
  }
  return out;
}

/**
 * For a chat template without tool support: the tool definitions go into the system message (after
 * the first system message's own text, or in a new one before the conversation), assistant calls
 * are written into the assistant's text in `format`, and tool results become user messages
 * `<tool_response>…</tool_response>` (consecutive results share one). Without tools no system text is added.
 */
export function messagesWithToolPrompt(
  messages: readonly ToolChatMessage[],
  tools: readonly ToolDefinition[],
  format: ToolCallFormat,
): TemplateMessage[] {
  const out = inPlainRoles(messages, format);
  if (tools.length === 0) return out;
  const prompt = toolSystemPrompt(tools, format);
  const first = out[0];
  if (first?.role === 'system') {
    out[0] = { role: 'system', content: first.content ? `${first.content}\n\n${prompt}` : prompt };
    return out;
  }
  return [{ role: 'system', content: prompt }, ...out];
}

/**
 * For a chat template with tool support: assistant calls as `tool_calls` [{id, type: 'function',
 * function: {name, arguments}}] with the arguments parsed into an object (templates render them with
 * `tojson`), and tool messages with their `tool_call_id` and `name`.
 */
export function messagesForToolTemplate(messages: readonly ToolChatMessage[]): TemplateMessage[] {
  return messages.map((m) => {
    const out: TemplateMessage = { role: m.role, content: m.content };
    if (m.toolCalls?.length) {
      out.tool_calls = m.toolCalls.map((c) => ({
        id: c.id,
        type: 'function',
        function: { name: c.name, arguments: argumentsValue(c.arguments) },
      }));
    }
    if (m.toolCallId !== undefined) out.tool_call_id = m.toolCallId;
    if (m.name !== undefined) out.name = m.name;
    return out;
  });
}
