// A local HTTP server speaking the two Hugging Face hub endpoints the model source uses:
//   GET /api/models/<org>/<name>/revision/<rev>?blobs=true   the commit <rev> resolves to, and its files
//   GET /<org>/<name>/resolve/<commit>/<path>                a file (with Range requests)
// Every request is recorded, so tests can check what was (or was not) asked for.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gitBlobId, isLfsFile, sha256Hex } from './hf-cache-fixture.ts';

export interface FakeHubRepo {
  /** The files at each commit (40 hex digits). */
  commits: Record<string, Record<string, Buffer>>;
  /** Branch and tag names → commit. */
  refs: Record<string, string>;
}

export interface FakeHubOptions {
  /** Replaces the listing entry of a file (default: size, blobId, and lfs for weights). */
  listed?: (name: string, data: Buffer) => object;
  /** Answer every request with this status instead. */
  status?: number;
}

export interface HubRequest {
  url: string;
  range?: string;
  authorization?: string;
}

export interface FakeHub {
  endpoint: string;
  requests: HubRequest[];
  close(): Promise<void>;
}

function defaultListing(name: string, data: Buffer): object {
  return {
    size: data.length,
    blobId: gitBlobId(data),
    ...(isLfsFile(name) ? { lfs: { sha256: sha256Hex(data), size: data.length, pointerSize: 134 } } : {}),
  };
}

export async function startFakeHub(repos: Record<string, FakeHubRepo>, options: FakeHubOptions = {}): Promise<FakeHub> {
  const requests: HubRequest[] = [];
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '';
    requests.push({ url, range: req.headers.range, authorization: req.headers.authorization });
    if (options.status !== undefined) return res.writeHead(options.status).end();
    const listing = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/?]+)\?blobs=true$/.exec(url);
    if (listing) {
      const repo = repos[listing[1]];
      const revision = decodeURIComponent(listing[2]);
      const commit = repo?.refs[revision] ?? (repo?.commits[revision] ? revision : undefined);
      if (!repo || !commit) return res.writeHead(404).end();
      const siblings = Object.entries(repo.commits[commit]).map(([name, data]) => ({
        rfilename: name,
        ...(options.listed ?? defaultListing)(name, data),
      }));
      return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: listing[1], sha: commit, siblings }));
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url);
    const data = resolve ? repos[resolve[1]]?.commits[decodeURIComponent(resolve[2])]?.[decodeURIComponent(resolve[3])] : undefined;
    if (!data) return res.writeHead(404).end();
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      const from = Number(range[1]);
      return res
        .writeHead(206, { 'content-length': data.length - from, 'content-range': `bytes ${from}-${data.length - 1}/${data.length}` })
        .end(data.subarray(from));
    }
    res.writeHead(200, { 'content-length': data.length }).end(data);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** One repo with one commit on `main`. */
export function singleCommitRepo(files: Record<string, Buffer>, commit = 'a'.repeat(40)): FakeHubRepo {
  return { commits: { [commit]: files }, refs: { main: commit } };
}

/** A port nothing listens on: bind one, then close it. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
