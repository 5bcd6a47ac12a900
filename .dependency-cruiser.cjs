// Import rules the tests enforce (test/import-rules.test.ts).
/** Modules that load node-mlx or the native CPU kernels: the engine process's alone. */
const ENGINE_RUNTIME = [
  '^src/engine/mlx[.]ts$',
  '^src/engine/native/cpu-kernels[.]ts$',
  '^types/mlx/',
  '(^|/)node_modules/@frost-beta/mlx/',
];

module.exports = {
  forbidden: [
    {
      name: 'server-loads-no-engine-runtime',
      comment:
        'The server process, the REST adapter and the text layer talk to the engine over IPC in token ids; ' +
        'loading node-mlx (which compiles at import and aborts the process on a C++ error) or the native ' +
        'kernels there would undo the process boundary. Import the dependency-free engine modules ' +
        '(engine-options, engine-protocol, request, engine-client) instead.',
      severity: 'error',
      from: { path: '^src/(cli|service|adapter-openai|text|model-source|log|util)/' },
      to: { path: ENGINE_RUNTIME, reachable: true },
    },
    {
      name: 'playground-imports-only-generated-code',
      comment:
        'The web playground runs in a browser and talks to the server over gRPC only: of the server tree it ' +
        'may bundle the generated protobuf code (src/gen), nothing else.',
      severity: 'error',
      from: { path: '^web/' },
      to: { path: '^src/', pathNot: '^src/gen/' },
    },
    {
      name: 'no-circular',
      comment: 'Data flows one way: client → service → engine → back.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/gen/' },
    tsConfig: { fileName: 'tsconfig.typecheck.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.d.ts'] },
  },
};
