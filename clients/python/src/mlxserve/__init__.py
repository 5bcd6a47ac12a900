"""Python client of the mlx-batch-server gRPC API. The generated messages and stubs are in mlxserve.v1."""
