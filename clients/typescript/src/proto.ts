// The generated mlxserve.v1 code this package wraps (generated from proto/ by scripts/gen-proto.sh).
export * from '../../../src/gen/mlxserve/v1/generation_service_pb.ts';
export * from '../../../src/gen/mlxserve/v1/generation_pb.ts';
export * from '../../../src/gen/mlxserve/v1/prompt_pb.ts';
export * from '../../../src/gen/mlxserve/v1/sampling_pb.ts';
export { Health, HealthCheckResponse_ServingStatus } from '../../../src/gen/grpc/health/v1/health_pb.ts';
