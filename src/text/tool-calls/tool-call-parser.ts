// Finds tool calls in the model's output as it streams: each delta gives the text that is certainly
// content (what could still be the start of a call's markup is held back) and the calls it
// completed. The result does not depend on how the output is split into deltas.
import type { CallScanner } from './call-json.ts';
import { hermesCallScanner } from './hermes-calls.ts';
import { Llama3JsonCallScanner } from './llama3-json-calls.ts';
import { mistralCallScanner } from './mistral-calls.ts';
import { defaultToolCallId } from './tool-call-id.ts';
import type { ParsedToolCall, ToolCallFormat } from './tool-types.ts';

/** A delta's share of the output: content for the client and the calls completed so far. */
export interface ToolCallDelta {
  content: string;
  calls: ParsedToolCall[];
}

function scannerFor(format: ToolCallFormat): CallScanner {
  switch (format) {
    case 'hermes':
      return hermesCallScanner();
    case 'llama3_json':
      return new Llama3JsonCallScanner();
    case 'mistral':
      return mistralCallScanner();
  }
}

/** Streaming extraction of one output's tool calls, in one format; use one parser per output. */
export class ToolCallParser {
  private readonly scanner: CallScanner;
  private finished = false;

  /** `newId` names each call found (mistralToolCallId for Mistral's templates). */
  constructor(
    format: ToolCallFormat,
    private readonly newId: () => string = defaultToolCallId,
  ) {
    this.scanner = scannerFor(format);
  }

  /** The next piece of output. Arguments come as compact JSON of an object. */
  push(text: string): ToolCallDelta {
    if (this.finished) throw new Error('ToolCallParser: push after finish');
    return this.named(this.scanner.push(text));
  }

  /**
   * The output has ended: releases what was held back. Markup that never became a valid call
   * (bad JSON, no name) comes back as content; a Hermes call missing only its closing tag counts.
   */
  finish(): ToolCallDelta {
    if (this.finished) throw new Error('ToolCallParser: finish called twice');
    this.finished = true;
    return this.named(this.scanner.finish());
  }

  private named(result: { content: string; calls: { name: string; arguments: string }[] }): ToolCallDelta {
    return { content: result.content, calls: result.calls.map((c) => ({ id: this.newId(), name: c.name, arguments: c.arguments })) };
  }
}
