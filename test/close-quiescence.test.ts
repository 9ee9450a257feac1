// Runtime.close() waits for fire-and-forget nested tasks (no promise on this thread) on the
// addon's notification that its live task count reached 0, not on a timer poll: with this
// thread's timers frozen, close() still resolves once the last nested task is gone, not before.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Runtime } from '../lib/index';

const filename = fileURLToPath(new URL('./fixtures/tasks/basic.mjs', import.meta.url));

afterEach(() => {
  vi.useRealTimers();
});

describe('close() waits on quiescence', () => {
  it('resolves after the fire-and-forget nested tasks finish, with no timer on this thread', async () => {
    const rt = await Runtime.start({ filename, workers: 2 });
    try {
      const sync = new Int32Array(new SharedArrayBuffer(16));
      // 4 children nobody awaits; each holds until sync[1] is set, then counts itself in sync[0].
      expect(await rt.spawn('fireAndForgetHeld', [4, sync])).toBe(4);
      vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval', 'setImmediate'] });  // this thread's only
      let closed = false;
      const closing = rt.close().then(() => {
        closed = true;
      });
      // close() is waiting: the children are still held (a microtask round lets it get there).
      for (let i = 0; i < 10; i++) await Promise.resolve();
      expect(closed).toBe(false);
      expect(rt.stats().tasks.live).toBeGreaterThan(0);
      Atomics.store(sync, 1, 1);
      Atomics.notify(sync, 1);
      await closing;
      expect(Atomics.load(sync, 0)).toBe(4);  // every child finished before close() resolved
    } finally {
      vi.useRealTimers();
      await rt.destroy();
    }
  });
});
