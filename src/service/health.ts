// grpc.health.v1.Health (Check, Watch, List). The overall status ("") and each served service's
// status follow one switch: SERVING while the engine is ready and the server is not draining,
// NOT_SERVING while it starts, restarts or shuts down.
import type { ServiceImpl, HandlerContext } from '@connectrpc/connect';
import { Code, ConnectError } from '@connectrpc/connect';
import { EventEmitter, on } from 'node:events';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../gen/grpc/health/v1/health_pb.ts';
import type { HealthCheckRequest, HealthCheckResponseSchema } from '../gen/grpc/health/v1/health_pb.ts';
import type { MessageInitShape } from '@bufbuild/protobuf';

export { ServingStatus };

export class HealthStatus {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly changes = new EventEmitter();

  /** `services` are the fully-qualified names reported besides the overall status "". */
  constructor(services: string[], serving = false) {
    for (const name of ['', ...services]) this.statuses.set(name, serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    this.changes.setMaxListeners(0); // one listener per Watch call
  }

  /** Sets every reported status; Watch calls see the change. */
  setServing(serving: boolean): void {
    const status = serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
    for (const [name, old] of this.statuses) {
      if (old === status) continue;
      this.statuses.set(name, status);
      this.changes.emit('change', name);
    }
  }

  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  private async *watch(req: HealthCheckRequest, ctx: HandlerContext): AsyncGenerator<MessageInitShape<typeof HealthCheckResponseSchema>> {
    // Subscribe before reading the first status so no change falls in between.
    const changes = on(this.changes, 'change', { signal: ctx.signal });
    let last = this.get(req.service) ?? ServingStatus.SERVICE_UNKNOWN;
    yield { status: last };
    try {
      for await (const [name] of changes) {
        const status = this.get(name as string);
        if (name !== req.service || status === undefined || status === last) continue;
        last = status;
        yield { status };
      }
    } catch (e) {
      if (!ctx.signal.aborted) throw e; // the call ended: stop watching
    }
  }

  impl(): ServiceImpl<typeof Health> {
    return {
      check: (req) => {
        const status = this.get(req.service);
        if (status === undefined) throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
        return { status };
      },
      watch: (req, ctx) => this.watch(req, ctx),
      list: () => ({ statuses: Object.fromEntries([...this.statuses].map(([name, status]) => [name, { status }])) }),
    };
  }
}

export { Health };
