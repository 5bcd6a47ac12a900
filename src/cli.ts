// mlx-batch-server's entry point (bin/mlx-batch-server.js runs its compiled form, dist/cli.js).
import { main } from './cli/program.ts';

await main(process.argv);
