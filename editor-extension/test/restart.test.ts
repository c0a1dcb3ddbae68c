import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RestartScheduler, type Timers } from '../src/restart';

/** Manual clock: `advance(ms)` runs due timers in order. */
class FakeTimers implements Timers {
  now = 0;
  private next = 1;
  private timers = new Map<number, { at: number; fn: () => void }>();
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  get count(): number {
    return this.timers.size;
  }
  async advance(ms: number): Promise<void> {
    this.now += ms;
    for (const [id, t] of [...this.timers].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at <= this.now) {
        this.timers.delete(id);
        t.fn();
      }
    }
    await new Promise((r) => setImmediate(r));
  }
}

describe('restart debounce', () => {
  it('restarts once, 1 s after the last of a burst of changes, with all the reasons', async () => {
    const timers = new FakeTimers();
    const calls: string[] = [];
    const s = new RestartScheduler(async (r) => void calls.push(r), 1000, timers);
    s.schedule('settings changed');
    await timers.advance(600);
    s.schedule('settings changed');
    s.schedule('Python interpreter changed');
    await timers.advance(999);
    assert.deepEqual(calls, []);
    assert.equal(s.pending, true);
    await timers.advance(1);
    assert.deepEqual(calls, ['settings changed, Python interpreter changed']);
    assert.equal(s.pending, false);
    assert.equal(timers.count, 0);
  });

  it('now() runs at once and cancels a pending scheduled restart', async () => {
    const timers = new FakeTimers();
    const calls: string[] = [];
    const s = new RestartScheduler(async (r) => void calls.push(r), 1000, timers);
    s.schedule('settings changed');
    await s.now('Restart Server command');
    assert.deepEqual(calls, ['settings changed, Restart Server command']);
    await timers.advance(5000);
    assert.equal(calls.length, 1, 'the debounced restart was cancelled');
  });

  it('never overlaps restarts and coalesces requests made during one into a single follow-up', async () => {
    let active = 0;
    let maxActive = 0;
    const calls: string[] = [];
    let release: () => void = () => {};
    const s = new RestartScheduler(async (r) => {
      active++;
      maxActive = Math.max(maxActive, active);
      calls.push(r);
      if (calls.length === 1) await new Promise<void>((res) => (release = res));
      active--;
    }, 1000, new FakeTimers());
    const first = s.now('a');
    const second = s.now('b');
    const third = s.now('c');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(calls, ['a']);
    release();
    await Promise.all([first, second, third]);
    assert.equal(maxActive, 1);
    assert.deepEqual(calls, ['a', 'b, c']);
  });

  it('reports a failing restart and keeps working', async () => {
    const errors: unknown[] = [];
    let n = 0;
    const s = new RestartScheduler(async () => {
      if (n++ === 0) throw new Error('spawn failed');
    }, 1000, new FakeTimers(), (e) => errors.push(e));
    await s.now('x');
    await s.now('y');
    assert.equal(n, 2);
    assert.equal(errors.length, 1);
  });

  it('does nothing after dispose', async () => {
    const timers = new FakeTimers();
    const calls: string[] = [];
    const s = new RestartScheduler(async (r) => void calls.push(r), 1000, timers);
    s.schedule('x');
    s.dispose();
    await timers.advance(2000);
    s.schedule('y');
    await s.now('z');
    assert.deepEqual(calls, []);
  });
});
