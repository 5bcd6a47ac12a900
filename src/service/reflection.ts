// gRPC server reflection (grpc.reflection.v1 and v1alpha, the same protocol under two names) over
// the protobuf-es descriptors of the served services, so grpcurl, buf curl and grpc-health-probe
// work without .proto files. connect-node ships none.
import { createRegistry, toBinary, type DescFile, type DescService, type MessageInitShape, type Registry } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import type { ConnectRouter, ServiceImpl } from '@connectrpc/connect';
import * as v1 from '../gen/grpc/reflection/v1/reflection_pb.ts';
import * as v1alpha from '../gen/grpc/reflection/v1alpha/reflection_pb.ts';

/** A reflection request, as both protocol versions shape it. */
type Question =
  | { case: 'fileByFilename'; value: string }
  | { case: 'fileContainingSymbol'; value: string }
  | { case: 'fileContainingExtension'; value: { containingType: string; extensionNumber: number } }
  | { case: 'allExtensionNumbersOfType'; value: string }
  | { case: 'listServices'; value: string }
  | { case: undefined; value?: undefined };

/** A reflection answer, as both protocol versions shape it. */
type Answer = MessageInitShape<typeof v1.ServerReflectionResponseSchema>['messageResponse'];

/** The files and everything they import, each once, in the order first reached. */
function withDependencies(files: DescFile[], seen = new Set<DescFile>()): DescFile[] {
  for (const f of files) {
    if (seen.has(f)) continue;
    seen.add(f);
    withDependencies(f.dependencies, seen);
  }
  return [...seen];
}

/** The answers to reflection questions about a fixed set of services. */
export class ReflectionIndex {
  private readonly registry: Registry;
  private readonly byFilename: Map<string, DescFile>;
  private readonly encoded: Map<DescFile, Uint8Array>;
  private readonly serviceNames: string[];

  constructor(services: DescService[]) {
    const files = withDependencies(services.map((s) => s.file));
    this.registry = createRegistry(...files);
    this.byFilename = new Map(files.map((f) => [f.proto.name, f]));
    this.encoded = new Map(files.map((f) => [f, toBinary(FileDescriptorProtoSchema, f.proto)]));
    this.serviceNames = services.map((s) => s.typeName);
  }

  /** The file that defines a symbol: a type, a service, or a method, field or enum value inside one. */
  private fileOfSymbol(name: string): DescFile | undefined {
    const type = this.registry.get(name);
    if (type) return type.file;
    const parent = scopeOf(name);
    const owner = parent ? this.registry.get(parent) : undefined;
    if (owner) return owner.file;
    // An enum value is named in its enum's scope, not the enum's ("pkg.FINISH_REASON_STOP").
    const valueName = name.slice(parent.length + 1);
    for (const t of this.registry) {
      if (t.kind === 'enum' && scopeOf(t.typeName) === parent && t.values.some((v) => v.name === valueName)) return t.file;
    }
    return undefined;
  }

  private files(file: DescFile | undefined, what: string): Answer {
    if (!file) return notFound(what);
    // The file first, then what it imports, as grpc-go's reflection does.
    return {
      case: 'fileDescriptorResponse',
      value: { fileDescriptorProto: withDependencies([file]).map((f) => this.encoded.get(f) as Uint8Array) },
    };
  }

  answer(q: Question): Answer {
    switch (q.case) {
      case 'listServices':
        return { case: 'listServicesResponse', value: { service: this.serviceNames.map((name) => ({ name })) } };
      case 'fileByFilename':
        return this.files(this.byFilename.get(q.value), `file "${q.value}"`);
      case 'fileContainingSymbol':
        return this.files(this.fileOfSymbol(q.value), `symbol "${q.value}"`);
      case 'fileContainingExtension': {
        const message = this.registry.getMessage(q.value.containingType);
        const extension = message && this.registry.getExtensionFor(message, q.value.extensionNumber);
        return this.files(extension?.file, `extension ${q.value.extensionNumber} of "${q.value.containingType}"`);
      }
      case 'allExtensionNumbersOfType': {
        if (!this.registry.getMessage(q.value)) return notFound(`type "${q.value}"`);
        const numbers: number[] = [];
        for (const t of this.registry) if (t.kind === 'extension' && t.extendee.typeName === q.value) numbers.push(t.number);
        return { case: 'allExtensionNumbersResponse', value: { baseTypeName: q.value, extensionNumber: numbers } };
      }
      default:
        return { case: 'errorResponse', value: { errorCode: 3, errorMessage: 'the reflection request names no question' } };
    }
  }
}

/** "pkg.Message.field" → "pkg.Message"; "" for a name without a scope. */
function scopeOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? '' : name.slice(0, dot);
}

function notFound(what: string): Answer {
  return { case: 'errorResponse', value: { errorCode: 5 /* NOT_FOUND */, errorMessage: `${what} not found` } };
}

/** Serves reflection (v1 and v1alpha) about `services` and about reflection itself. */
export function registerReflection(router: ConnectRouter, services: DescService[]): void {
  const index = new ReflectionIndex([...services, v1.ServerReflection, v1alpha.ServerReflection]);
  router.service(v1.ServerReflection, reflectionV1(index));
  router.service(v1alpha.ServerReflection, reflectionV1alpha(index));
}

function reflectionV1(index: ReflectionIndex): ServiceImpl<typeof v1.ServerReflection> {
  return {
    async *serverReflectionInfo(requests) {
      for await (const req of requests)
        yield { validHost: req.host, originalRequest: req, messageResponse: index.answer(req.messageRequest) };
    },
  };
}

function reflectionV1alpha(index: ReflectionIndex): ServiceImpl<typeof v1alpha.ServerReflection> {
  return {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        // Same fields and numbers as v1, so v1's answer shape fits.
        const messageResponse = index.answer(req.messageRequest) as MessageInitShape<
          typeof v1alpha.ServerReflectionResponseSchema
        >['messageResponse'];
        yield { validHost: req.host, originalRequest: req, messageResponse };
      }
    },
  };
}
