/**
 * "did you mean …?" for every place mpx meets an unknown name (spec keys and values, model names, --filter keys and
 * values, metric names). One rule: a candidate is suggested only when it is close enough to be a likely typo, so an
 * unrelated word never gets a confident wrong answer.
 */
import { closest, distance } from 'fastest-levenshtein';

/** The candidate `word` is most likely a typo of, or undefined when none is close (same letters in another case always are). */
export function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0 || word.length === 0) return undefined;
  const sameCase = candidates.find((c) => c.toLowerCase() === word.toLowerCase());
  if (sameCase !== undefined) return sameCase;
  const best = closest(word, [...candidates]);
  const limit = Math.max(2, Math.floor(Math.max(best.length, word.length) / 3));
  return distance(word, best) <= limit ? best : undefined;
}

/** `did you mean "batchSize"?`, or undefined when no candidate is close enough (see `closestMatch`). */
export function didYouMean(word: string, candidates: readonly string[], show: (match: string) => string = (m) => `"${m}"`): string | undefined {
  const match = closestMatch(word, candidates);
  return match === undefined ? undefined : `did you mean ${show(match)}?`;
}
