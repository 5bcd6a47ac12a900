// mlx-batch-server's entry point (bin/mlx-batch-server.js runs it through tsx).
import { main } from './cli/program.ts';

await main(process.argv);
