// Loaded with `node --import` to make node-mlx and every native addon unloadable in a process, as
// on a machine where they cannot load: the process may only run if it never needs them.
import { registerHooks } from 'node:module';

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === '@frost-beta/mlx' || specifier.startsWith('@frost-beta/mlx/') || specifier.endsWith('.node')) {
      throw new Error(`${specifier} cannot be loaded in this process`);
    }
    return nextResolve(specifier, context);
  },
});
