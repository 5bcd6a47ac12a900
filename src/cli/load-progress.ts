// Shows how far model loading has come: a bar on a terminal, a few log lines otherwise (a log
// file full of bar redraws helps nobody, and a log shipper wants JSON lines only).
import cliProgress from 'cli-progress';
import type { Logger } from '../log/logger.ts';

export interface LoadProgress {
  update(done: number, total: number): void;
  stop(): void;
}

export function loadProgress(label: string, log: Logger, stream: NodeJS.WriteStream = process.stderr): LoadProgress {
  if (stream.isTTY) {
    let bar: cliProgress.SingleBar | undefined;
    return {
      update(done, total) {
        if (!bar) {
          bar = new cliProgress.SingleBar(
            { stream, format: `${label} [{bar}] {value}/{total} layers`, hideCursor: true, clearOnComplete: false },
            cliProgress.Presets.shades_classic,
          );
          bar.start(total, done);
        } else bar.update(done);
      },
      stop: () => bar?.stop(),
    };
  }
  let lastQuarter = -1;
  return {
    update(done, total) {
      const quarter = total > 0 ? Math.floor((4 * done) / total) : 4;
      if (quarter === lastQuarter) return;
      lastQuarter = quarter;
      log.info({ layersLoaded: done, layers: total }, label);
    },
    stop() {},
  };
}
