import { MpxError } from '../../src/errors.js';

/** Runs `fn` and returns the MpxError it throws; fails the test if it throws nothing or something else. */
export function mpxErrorOf(fn: () => unknown): MpxError {
  try {
    fn();
  } catch (error) {
    if (error instanceof MpxError) return error;
    throw error;
  }
  throw new Error('expected an MpxError');
}
