// The one import of node-mlx: its `core` namespace as `mx`, and the array type.
import mlx from '@frost-beta/mlx';

export const mx = mlx.core;
export type MxArray = InstanceType<typeof mx.array>;
