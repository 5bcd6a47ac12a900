// Parsers for command-line values. A bad value fails with commander's usage error, which names
// the flag, instead of becoming NaN somewhere deep in the engine.
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { isLogLevel, LOG_LEVELS, type LogLevel } from '../log/logger.ts';
import { chatTemplateArgument } from '../text/chat-template.ts';

export function integerIn(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value.trim());
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer in [${min}, ${max}], got "${value}".`);
    }
    return n;
  };
}

export const port = integerIn(0, 65535);

const MAX_TOKEN_COUNT = 2 ** 31 - 1;

/**
 * A token count as vLLM's --max-model-len takes it: "4096", or with a suffix, decimal ("32k" =
 * 32000, "1.5k") or binary ("32K" = 32768, whole numbers only).
 */
export function tokenCount(value: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(value.trim());
  const binary = m?.[2] === 'K' || m?.[2] === 'M';
  const n = !m ? Number.NaN : Number(m[1]) * ({ '': 1, k: 1e3, m: 1e6, K: 1024, M: 1024 ** 2 }[m[2]] ?? Number.NaN);
  if (!m || (binary && m[1].includes('.')) || !Number.isInteger(n) || n < 1 || n > MAX_TOKEN_COUNT) {
    throw new InvalidArgumentError(`expected a token count in [1, ${MAX_TOKEN_COUNT}] such as 4096, 32k or 32K, got "${value}".`);
  }
  return n;
}

/** One name of a repeatable, variadic name option (--served-model-name a b), collected in order. */
export function modelName(value: string, previous: string[] | undefined): string[] {
  if (value.trim() === '') throw new InvalidArgumentError('a model name must not be empty.');
  return [...(previous ?? []), value];
}

/** A LoRA adapter to serve from the start: its name and its directory. */
export interface LoraModule {
  name: string;
  path: string;
}

/**
 * One adapter of --lora or --lora-modules (repeatable and variadic): `name=path`, or vLLM's JSON
 * form `{"name": ..., "path": ...}`. The directory must exist (the engine reads it at start); its
 * path is made absolute so the server reports it whatever the working directory.
 */
export function loraModule(value: string, previous: LoraModule[] | undefined): LoraModule[] {
  let name: string;
  let path: string;
  if (value.trim().startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (e) {
      throw new InvalidArgumentError(`"${value}" is not valid JSON (${(e as Error).message}).`);
    }
    const o = parsed as { name?: unknown; path?: unknown };
    if (typeof o.name !== 'string' || typeof o.path !== 'string') {
      throw new InvalidArgumentError(`the JSON form needs string "name" and "path" fields, got ${value}.`);
    }
    ({ name, path } = { name: o.name, path: o.path });
  } else {
    const eq = value.indexOf('=');
    if (eq < 0) throw new InvalidArgumentError(`expected name=path (e.g. sql=./adapters/sql), got "${value}".`);
    name = value.slice(0, eq);
    path = value.slice(eq + 1);
  }
  name = name.trim();
  if (name === '') throw new InvalidArgumentError(`the adapter name (before "=") must not be empty, got "${value}".`);
  if (path.trim() === '') throw new InvalidArgumentError(`the adapter "${name}" has no path (after "="), got "${value}".`);
  if ((previous ?? []).some((m) => m.name === name)) throw new InvalidArgumentError(`the adapter name "${name}" is given twice.`);
  const absolute = resolve(path);
  let isDirectory = false;
  try {
    isDirectory = statSync(absolute).isDirectory();
  } catch {
    throw new InvalidArgumentError(`the adapter "${name}": ${path} does not exist.`);
  }
  if (!isDirectory) throw new InvalidArgumentError(`the adapter "${name}": ${path} is not a directory (give the adapter's directory).`);
  return [...(previous ?? []), { name, path: absolute }];
}

/** A --chat-template value: a readable file, or the template itself; it must parse. */
export function chatTemplate(value: string): string {
  try {
    return chatTemplateArgument(value).source;
  } catch (e) {
    throw new InvalidArgumentError(`${(e as Error).message}.`);
  }
}

/** A ratio above 1 (e.g. "2.5"). */
export function ratioAbove1(value: string): number {
  const n = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(n) || n <= 1 || n > 1000)
    throw new InvalidArgumentError(`expected a number above 1, got "${value}".`);
  return n;
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** A byte count: "1073741824", or with a unit: "512MiB", "2GiB", "1.5GB". */
export function byteSize(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new InvalidArgumentError(`expected a byte count such as 1073741824, 512MiB or 2GiB, got "${value}".`);
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new InvalidArgumentError(`"${value}" is too large.`);
  return bytes;
}

export function logLevel(value: string): LogLevel {
  if (!isLogLevel(value)) throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}, got "${value}".`);
  return value;
}

/** host:port of a gRPC service. */
export function grpcTarget(value: string): string {
  if (!/^(https?:\/\/)?(\[[0-9a-fA-F:.]+\]|[^:\s/]+):\d+\/?$/.test(value)) {
    throw new InvalidArgumentError(`expected host:port (e.g. 127.0.0.1:50051), got "${value}".`);
  }
  return value;
}

/**
 * An API key kept in a file (its first line), so that it is not visible in the process list as
 * `--api-key` is. The file must exist and hold a non-empty key.
 */
export function keyFromFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InvalidArgumentError(`cannot read "${path}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}.`);
  }
  const key = text.split(/\r?\n/, 1)[0].trim();
  if (key.length === 0) throw new InvalidArgumentError(`"${path}" holds no key on its first line.`);
  return key;
}

/**
 * Web origins, comma-separated and repeatable: `*`, or scheme://host[:port] as a browser sends
 * it in its Origin header (no path).
 */
export function originList(value: string, previous: string[] | undefined): string[] {
  const origins = value
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '');
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+\/?$/i.test(origin)) {
      throw new InvalidArgumentError(`expected origins such as http://example.com:3000 (or *), got "${origin}".`);
    }
  }
  return [...(previous ?? []), ...origins];
}
