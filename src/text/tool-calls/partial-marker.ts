// Streamed text is held back while its end could still become a marker, so that a marker split
// across deltas is found whole and none of it leaks out as content.

/** The length of the longest end of `text` that is a proper beginning of `marker` (0 if none). */
export function partialMarkerLength(text: string, marker: string): number {
  for (let n = Math.min(text.length, marker.length - 1); n > 0; n--) {
    if (text.endsWith(marker.slice(0, n))) return n;
  }
  return 0;
}

/** True for text of whitespace only (or none). */
export function isBlank(text: string): boolean {
  return text.trim() === '';
}
