// The real executable (bin/mlx-batch-server.js) started by the soak on free ports, so the soak
// knows its process id (for RSS) and can check that it shuts down cleanly afterwards.
import { launchCli, type CliProcess } from '../../test/helpers/cli-process.ts';

export interface SpawnedServer {
  pid: number;
  /** OpenAI base URL (…/v1). */
  api: string;
  /** gRPC host:port. */
  grpc: string;
  /** The server's arguments, for the report. */
  args: string[];
  /** SIGTERM (graceful drain), then the exit code; SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<{ code: number | null; killed: boolean }>;
  /** What it wrote to stderr (its JSON logs). */
  stderr(): string;
}

/** Starts the server with `--model` (when given), ports 0, warn-level logs and `extra` arguments. */
export async function spawnServer(model: string | undefined, extra: string[]): Promise<SpawnedServer> {
  const args = [...(model ? ['--model', model] : []), '--port', '0', '--grpc-port', '0', '--log-level', 'warn', ...extra];
  const cli: CliProcess = await launchCli(args);
  const pid = cli.child.pid as number;
  return {
    pid,
    api: cli.api,
    grpc: cli.grpc,
    args,
    stderr: cli.stderr,
    async stop(timeoutMs = 60_000) {
      cli.child.kill('SIGTERM');
      const timer = setTimeout(() => cli.child.kill('SIGKILL'), timeoutMs);
      const code = await cli.exited;
      clearTimeout(timer);
      return { code, killed: cli.child.signalCode === 'SIGKILL' };
    },
  };
}
