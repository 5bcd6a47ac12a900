// Which tool-call format a model writes, read from its chat template: the template shows the model
// its own call syntax, so the markers it renders name the format. A template that never reads the
// `tools` variable cannot show tools; the server then describes them in the system message itself.
import type { ToolCallFormat } from './tool-types.ts';

/** What a chat template says about tool calling. */
export interface TemplateToolSupport {
  format: ToolCallFormat;
  /** The template reads `tools` (transformers passes the definitions under that name). */
  templateHasTools: boolean;
}

/** Jinja statements and expressions: the only places a template reads its variables. */
const JINJA_CODE = /\{%([\s\S]*?)%\}|\{\{([\s\S]*?)\}\}/g;
/** String literals inside Jinja code, so that text such as "<tools>" is not taken for the variable. */
const JINJA_STRING = /'(?:[^'\\]|\\[\s\S])*'|"(?:[^"\\]|\\[\s\S])*"/g;
/** `tools` as a name on its own: not `xml_tools`, not an attribute such as `message.tools`. */
const TOOLS_VARIABLE = /(?<![\w.])tools(?!\w)/;
/** Llama 3.1's template: the python tag of its built-in tools, the ipython role, `"parameters"` calls. */
const LLAMA3_MARKERS = /<\|python_tag\|>|\bipython\b|"parameters"/;

function readsToolsVariable(source: string): boolean {
  for (const m of source.matchAll(JINJA_CODE)) {
    const code = (m[1] ?? m[2]).replace(JINJA_STRING, '""');
    if (TOOLS_VARIABLE.test(code)) return true;
  }
  return false;
}

function formatOf(source: string): ToolCallFormat {
  if (source.includes('[TOOL_CALLS]')) return 'mistral';
  if (source.includes('<tool_call>')) return 'hermes';
  if (LLAMA3_MARKERS.test(source)) return 'llama3_json';
  // ChatML templates without tools (SmolLM2's): Hermes-style calls are what such models have seen most.
  return 'hermes';
}

/** Reads the tool-call format and tool support from a Jinja chat template (undefined: no template). */
export function detectToolCallFormat(templateSource: string | undefined): TemplateToolSupport {
  if (templateSource === undefined) return { format: 'hermes', templateHasTools: false };
  return { format: formatOf(templateSource), templateHasTools: readsToolsVariable(templateSource) };
}
