// The system message that teaches tools to a model whose chat template cannot show them (it never
// reads `tools`): the definitions and the call syntax of the format the server will parse, worded
// as the Hermes function-calling prompt, which small ChatML models have seen most.
import { spacedJson } from './call-syntax.ts';
import type { ToolCallFormat, ToolDefinition } from './tool-types.ts';

/** Each format's call, with placeholders for the name and the arguments. */
const CALL_SYNTAX: Record<ToolCallFormat, string> = {
  hermes:
    'For each function call return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>',
  llama3_json:
    "To call a function, respond with only a json object with function name and arguments (separate several calls with '; '):\n" +
    '{"name": <function-name>, "parameters": <args-json-object>}',
  mistral:
    'To call functions, respond with [TOOL_CALLS] followed by a json list of objects with function name and arguments:\n' +
    '[TOOL_CALLS][{"name": <function-name>, "arguments": <args-json-object>}]',
};

/** A tool as OpenAI's request spells it, which is how the templates with tools show it too. */
function describeTool(tool: ToolDefinition): string {
  return spacedJson({ type: 'function', function: { name: tool.name, description: tool.description, parameters: tool.parameters } });
}

/** The tool instructions for a system message. */
export function toolSystemPrompt(tools: readonly ToolDefinition[], format: ToolCallFormat): string {
  return [
    'You are a function calling AI model. You are provided with function signatures within <tools></tools> XML tags. ' +
      "You may call one or more functions to assist with the user query. Don't make assumptions about what values to plug into functions. " +
      'Here are the available tools:',
    '<tools>',
    ...tools.map(describeTool),
    '</tools>',
    CALL_SYNTAX[format],
    'The results of the calls come back to you within <tool_response></tool_response> XML tags.',
  ].join('\n');
}
