// GET /docs: Swagger UI over /openapi.json, its files served from the installed swagger-ui-dist
// package (no CDN: the page works offline and on a closed network). The page and its starter
// script are ours; the library files are read once, on their first request.
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { OpenAIError } from './openai-error.ts';

const PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>mlx-batch-server API</title>
    <link rel="stylesheet" href="/docs/swagger-ui.css">
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js"></script>
    <script src="/docs/docs-init.js"></script>
  </body>
</html>
`;

const INIT_SCRIPT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true });
`;

/** The library files the page loads, with their content types. */
const LIBRARY_FILES: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

const OWN_FILES: Record<string, { type: string; body: string }> = {
  '': { type: 'text/html; charset=utf-8', body: PAGE },
  'docs-init.js': { type: 'text/javascript; charset=utf-8', body: INIT_SCRIPT },
};

/** The library files change only with the installed package: browsers may keep them a day. */
const LIBRARY_CACHE = 'public, max-age=86400';

let libraryDir: string | undefined;
const loaded = new Map<string, Buffer>();

function libraryFile(name: string): Buffer {
  let body = loaded.get(name);
  if (!body) {
    libraryDir ??= dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
    body = readFileSync(join(libraryDir, name));
    loaded.set(name, body);
  }
  return body;
}

function send(res: ServerResponse, type: string, body: string | Buffer, cache: string): void {
  res.writeHead(200, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': cache,
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}

/** Answers /docs (`file` '') and /docs/{file}; any other file is 404. */
export function answerDocs(res: ServerResponse, file: string): void {
  // Own keys only: a name such as 'constructor' must not find Object's.
  const own = Object.hasOwn(OWN_FILES, file) ? OWN_FILES[file] : undefined;
  if (own) {
    send(res, own.type, own.body, 'no-cache');
    return;
  }
  const type = Object.hasOwn(LIBRARY_FILES, file) ? LIBRARY_FILES[file] : undefined;
  if (!type) throw new OpenAIError(404, `Invalid URL (GET /docs/${file.slice(0, 200)})`, 'invalid_request_error');
  let body: Buffer;
  try {
    body = libraryFile(file);
  } catch {
    throw new OpenAIError(
      404,
      'The docs page is not available: the swagger-ui-dist package is not installed (npm install).',
      'invalid_request_error',
    );
  }
  send(res, type, body, LIBRARY_CACHE);
}
