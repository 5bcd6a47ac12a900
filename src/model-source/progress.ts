// Progress of long fetches (downloads, extraction) reported one of three ways: to a callback
// the caller supplies, as a cli-progress bar when a person is watching the terminal, or as
// plain log lines when output goes to a file or CI log (bars would fill it with redraws).
import cliProgress from 'cli-progress';

export interface ProgressEvent {
  /** What is happening, e.g. "download" or "extract". */
  phase: string;
  /** The file being processed. */
  label: string;
  bytes: number;
  /** Total bytes, when known. */
  total?: number;
  done: boolean;
}

export interface ProgressOptions {
  /** Receives every progress event; when given, nothing is drawn or logged for progress. */
  onProgress?: (event: ProgressEvent) => void;
  /** Draw a progress bar on stderr. Default: whether stderr is a terminal. */
  progressBar?: boolean;
  /** Where plain progress lines and notices go. Default: stderr. */
  log?: (line: string) => void;
}

export interface ProgressTask {
  update(bytes: number): void;
  finish(): void;
}

export function logTo(options: ProgressOptions): (line: string) => void {
  return options.log ?? ((line) => process.stderr.write(`${line}\n`));
}

export function wantsProgressBar(options: ProgressOptions): boolean {
  return options.onProgress === undefined && (options.progressBar ?? process.stderr.isTTY === true);
}

export function formatMegabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export function startProgress(options: ProgressOptions, phase: string, label: string, total?: number): ProgressTask {
  if (options.onProgress) return callbackTask(options.onProgress, phase, label, total);
  if (wantsProgressBar(options)) return barTask(phase, label, total);
  return logLineTask(logTo(options), phase, label, total);
}

function callbackTask(onProgress: (event: ProgressEvent) => void, phase: string, label: string, total?: number): ProgressTask {
  let bytes = 0;
  onProgress({ phase, label, bytes, total, done: false });
  return {
    update(current) {
      bytes = current;
      onProgress({ phase, label, bytes, total, done: false });
    },
    finish() {
      onProgress({ phase, label, bytes, total, done: true });
    },
  };
}

function barTask(phase: string, label: string, total?: number): ProgressTask {
  const bar = new cliProgress.SingleBar(
    {
      format: `${phase} ${label} [{bar}] {percentage}% | {megabytes} | ETA {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total ?? 0, 0, { megabytes: formatMegabytes(0) });
  return {
    update(bytes) {
      if (total === undefined) bar.setTotal(bytes);
      bar.update(bytes, { megabytes: formatMegabytes(bytes) });
    },
    finish() {
      bar.stop();
    },
  };
}

// One line at the start, one per quarter done, one at the end.
function logLineTask(log: (line: string) => void, phase: string, label: string, total?: number): ProgressTask {
  const start = Date.now();
  let nextQuarter = 1;
  let bytes = 0;
  log(`${phase} ${label}${total !== undefined ? ` (${formatMegabytes(total)})` : ''}`);
  return {
    update(current) {
      bytes = current;
      if (total === undefined || total === 0) return;
      while (nextQuarter < 4 && bytes >= (total * nextQuarter) / 4) {
        log(`${phase} ${label}: ${nextQuarter * 25}%`);
        nextQuarter++;
      }
    },
    finish() {
      log(`${phase} ${label}: done, ${formatMegabytes(bytes)} in ${((Date.now() - start) / 1000).toFixed(1)} s`);
    },
  };
}
