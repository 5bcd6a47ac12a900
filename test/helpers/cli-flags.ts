// The real command-line parser (buildProgram) with its actions recorded instead of run: what an
// argument list becomes (flags with their defaults applied) or the usage error it gets.
import { buildProgram, type AdapterFlags, type ServeFlags } from '../../src/cli/program.ts';

export interface ParsedCli {
  serve?: ServeFlags;
  adapter?: AdapterFlags;
  /** The usage error the program wrote ('' when the arguments were accepted). */
  error: string;
}

/** Parses `args` (what follows the executable) as mlx-batch-server would. */
export async function parseCli(...args: string[]): Promise<ParsedCli> {
  const parsed: ParsedCli = { error: '' };
  const program = buildProgram({ serve: async (f) => void (parsed.serve = f), adapter: async (f) => void (parsed.adapter = f) });
  for (const cmd of [program, ...program.commands]) {
    cmd.exitOverride().configureOutput({ writeErr: (s) => (parsed.error += s), writeOut: () => {} });
  }
  try {
    await program.parseAsync(['node', 'mlx-batch-server', ...args]);
  } catch {
    // exitOverride throws after writing the usage error.
  }
  return parsed;
}
