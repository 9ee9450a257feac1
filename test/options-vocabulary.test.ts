// Runtime and NativeRuntime take the same scheduler options with the same meanings (placement
// 'spread' | 'cpu' | 'none' | [{ node, cpus? }], cpus omitted = the node's CPUs and [] an error,
// workers equal to a list's length, `closed`), checked by one function (lib/core/validation.ts
// schedulerConfig) and built into the core's options by one builder (native/napi/options_js.cpp).
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes, Runtime, createNativeRuntime, topology, type NativeRuntime, type NativeRuntimeOptions, type RuntimeOptions } from '../lib/index';
import { jsBinding } from '../lib/core/js-binding';
import { expectCode } from './helpers';

const filename = fileURLToPath(new URL('./fixtures/tasks/basic.mjs', import.meta.url));
const node = topology().nodes.find((n) => n.cpus.length > 0)!.id;
const open: NativeRuntime[] = [];
afterEach(() => {
  for (const rt of open.splice(0)) rt.destroy();
});
function native(options: NativeRuntimeOptions): NativeRuntime {
  const rt = createNativeRuntime(options);
  open.push(rt);
  return rt;
}
async function startRejection(options: Omit<RuntimeOptions, 'filename'>): Promise<unknown> {
  return Runtime.start({ filename, ...options }).then(
    async (rt) => {
      await rt.destroy();
      return undefined;
    },
    (err: unknown) => err,
  );
}

describe('one option vocabulary for both runtimes', () => {
  it("NativeRuntime takes placement 'cpu' and 'none' as Runtime does", () => {
    const perCpu = native({ workers: 2, placement: 'cpu' });
    for (const w of perCpu.topology().workers) expect(w.cpus).toHaveLength(1);
    expect(perCpu.topology().pinned).toBe(true);
    const loose = native({ workers: 2, placement: 'none' });
    expect(loose.topology().pinned).toBe(false);
    for (const w of loose.topology().workers) expect(w.cpus).toEqual([]);
  });

  it("the deprecated pin spells the same modes, and not together with placement 'cpu' / 'none'", () => {
    expect(native({ workers: 2, pin: 'cpu' }).topology().workers.map((w) => w.cpus.length)).toEqual([1, 1]);
    expectCode(() => createNativeRuntime({ placement: 'cpu', pin: 'none' }), RangeError, ErrorCodes.INVALID_OPTION);
  });

  it('an unknown placement mode is the same RangeError in both', async () => {
    expectCode(() => createNativeRuntime({ placement: 'node' as never }), RangeError, ErrorCodes.INVALID_OPTION);
    const err = await startRejection({ placement: 'node' as never });
    expect(err).toBeInstanceOf(RangeError);
    expect((err as { code?: string }).code).toBe(ErrorCodes.INVALID_OPTION);
  });

  it('cpus: [] is ERR_HWSQ_EMPTY_CPUS in both, with nothing started', async () => {
    expectCode(() => createNativeRuntime({ placement: [{ node, cpus: [] }] }), RangeError, ErrorCodes.EMPTY_CPUS);
    const err = await startRejection({ placement: [{ node, cpus: [] }] });
    expect(err).toBeInstanceOf(RangeError);
    expect((err as { code?: string }).code).toBe(ErrorCodes.EMPTY_CPUS);
  });

  it("workers must equal an explicit placement's length in both", async () => {
    expectCode(() => createNativeRuntime({ workers: 2, placement: [{ node }] }), RangeError, ErrorCodes.INVALID_WORKERS);
    const err = await startRejection({ workers: 2, placement: [{ node }] });
    expect((err as { code?: string }).code).toBe(ErrorCodes.INVALID_WORKERS);
  });

  it('cpus omitted is the node\'s allowed CPUs in both', async () => {
    const cpus = topology().nodes.find((n) => n.id === node)!.cpus.filter((c) => topology().allowedCpus.includes(c));
    expect(native({ placement: [{ node }] }).topology().workers[0]!.cpus).toEqual(cpus);
    const rt = await Runtime.start({ filename, placement: [{ node }] });
    try {
      expect(rt.workers[0]!.cpus).toEqual(cpus);
    } finally {
      await rt.destroy();
    }
  });

  it('both say closed once closing (Runtime keeps isClosed as a deprecated alias)', async () => {
    const n = native({ workers: 1 });
    expect(n.closed).toBe(false);
    await n.close();
    expect(n.closed).toBe(true);
    const rt = await Runtime.start({ filename, workers: 1 });
    expect(rt.closed).toBe(false);
    const closing = rt.close();
    expect(rt.closed).toBe(true);
    expect(rt.isClosed).toBe(true);
    await closing;
  });

  it('cgroupPollMs: the same bounds in both, and a number of workers or a placement list stays fixed', async () => {
    expectCode(() => createNativeRuntime({ cgroupPollMs: 5 }), RangeError, ErrorCodes.INVALID_OPTION);
    const err = await startRejection({ cgroupPollMs: 5 });
    expect(err).toBeInstanceOf(RangeError);
    expect((err as { code?: string }).code).toBe(ErrorCodes.INVALID_OPTION);
    expect(native({ workers: 1, cgroupPollMs: 10 }).stats().parallelismSource).toBe('fixed');
    expect(native({ placement: [{ node }], cgroupPollMs: 10 }).stats().parallelismSource).toBe('fixed');
    const rt = await Runtime.start({ filename, placement: [{ node }], cgroupPollMs: 10 });
    try {
      expect(rt.stats().parallelismSource).toBe('fixed');
    } finally {
      await rt.destroy();
    }
  });

  it('the addon builds both runtimes with one options builder: an unknown pin mode throws for either', () => {
    const b = jsBinding();
    const config = { workers: 1, placement: null, pin: 'socket', confineToCaller: false, policy: 'hierarchical', hogThresholdNs: 1e7, numaNode: -1, concurrency: 1, budget: 1, spinNs: 0 };
    expectCode(() => b.create(config), RangeError, ErrorCodes.INVALID_OPTION);
  });
});
