// The wire protocol is defined twice, once per language (native/napi/wire.h, lib/core/wire.ts):
// the addon's exported constants must equal the TS ones, group by group and name by name.
import { describe, expect, it } from 'vitest';
import { native } from '../lib/core/native';
import { Wire, errorResult, Result } from '../lib/core/wire';
import { encodeError, Writer } from '../lib/core/codec';

describe('wire protocol', () => {
  const binding = native();

  it('the addon exports the same constants as lib/core/wire.ts', () => {
    expect(binding.wire).toEqual(JSON.parse(JSON.stringify(Wire)));
    expect(Object.keys(binding.wire).sort()).toEqual(Object.keys(Wire).sort());
  });

  it('record headers hold their fields without overlap, the f64 seq 8-byte aligned', () => {
    const { completion, batch } = binding.wire;
    expect(completion.SEQ % 8).toBe(0);
    expect(completion.LEN + 4).toBe(completion.HEADER);
    expect(batch.SEQ % 8).toBe(0);
    expect(batch.SEQ + 8).toBe(batch.HEADER);
  });

  it('an error result never reads as a marker: the shortest encoded error is longer than 2 bytes', () => {
    // Markers -3 and -4 equal errorResult(1) and errorResult(2): the protocol relies on this.
    const markers: number[] = [Result.PENDING, Result.SETTLED_LOCALLY, Result.COMPLETED_BY_JS];
    for (const thrown of [undefined, null, 0, '', new Error(''), Object.create(null)]) {
      const w = new Writer(Buffer.alloc(64));
      encodeError(w, thrown);
      expect(markers).not.toContain(errorResult(w.pos));
    }
  });
});
