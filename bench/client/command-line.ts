// The command as it was run, for result files that are shared: words quoted only where a shell
// needs it, and paths under the working or home directory written relative to them.
import { homedir } from 'node:os';

export function quoteWord(word: string): string {
  return /^[\w@%+=:,./~-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

export function shareablePaths(text: string): string {
  return text.replaceAll(`${process.cwd()}/`, '').replaceAll(homedir(), '~');
}

export function commandLine(script: string, args: string[]): string {
  return shareablePaths([`node --import tsx ${script}`, ...args.map(quoteWord)].join(' '));
}
