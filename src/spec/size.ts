/** Byte sizes as people write them: `2GiB`, `512 MiB`, `1.5GB`, `1000000` (bytes). */
const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const SIZE_PATTERN = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;

/** Parses a byte size; returns null when the text is not one (callers word the error for their context). */
export function parseByteSize(text: string | number): number | null {
  if (typeof text === 'number') return Number.isSafeInteger(text) && text > 0 ? text : null;
  const match = SIZE_PATTERN.exec(text);
  if (!match) return null;
  const factor = UNITS[(match[2] || 'b').toLowerCase()];
  if (factor === undefined) return null;
  const bytes = Math.round(Number(match[1]) * factor);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : null;
}

export const BYTE_SIZE_EXAMPLES = '2GiB, 512MiB, 1.5GB or a number of bytes';

/** A byte count for people, in binary units with 3 significant digits: `512 B`, `48.0 MiB`, `16.0 GiB`. */
export function formatByteSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toPrecision(3)} ${units[unit]}`;
}
