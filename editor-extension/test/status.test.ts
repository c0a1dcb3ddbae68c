import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { RunStateParams } from '../src/protocol';
import { formatNumber, formatStatus, pickMetric, RunTracker, shortTarget, StatusBar } from '../src/status';
import { mock } from './vscode-mock';

const base = { runId: 'r1', uri: 'file:///ws/model.py', target: '/ws/model.py::LitModel', label: 'LitModel', fn: 'fit' };
/** A torchbolt/runState payload as the server sends it (fields the test leaves out are absent). */
const st = (state: Partial<RunStateParams>): RunStateParams => ({ ...base, status: 'running', active: true, metrics: {}, ...state });

describe('runState -> status bar text', () => {
  beforeEach(() => mock.reset());

  it('shows the server state when no run is known', () => {
    assert.equal(formatStatus('starting', true, undefined).text, '$(loading~spin) torchbolt');
    assert.equal(formatStatus('ready', true, undefined).text, '$(zap) torchbolt');
    assert.equal(formatStatus('ready', false, undefined).text, '$(shield) torchbolt: restricted');
    const crashed = formatStatus('crashed', true, undefined);
    assert.equal(crashed.text, '$(error) torchbolt: server crashed');
    assert.equal(crashed.command, 'torchbolt.ui.showLogs');
    assert.equal(crashed.error, true);
    assert.equal(formatStatus('missing', true, undefined).text, '$(warning) torchbolt: not installed');
  });

  it('follows a fit from start to finish, from the server state alone', () => {
    const runs = new RunTracker();
    const text = () => formatStatus('ready', true, runs.current(), runs.active().length).text;
    runs.apply(st({ status: 'starting', message: '' }));
    assert.equal(text(), '$(sync~spin) Fit LitModel');
    runs.apply(st({ stage: 'train', epoch: 2, maxEpochs: 10, batch: 7, total: 50, metrics: { train_loss: 0.23101 }, message: 'epoch 3/10 · step 7/50 · train_loss 0.231' }));
    assert.equal(text(), '$(sync~spin) Fit LitModel · epoch 3/10 · step 7/50 · train_loss 0.231');
    runs.apply(st({ status: 'success', active: false, durationS: 12.4, metrics: { loss: 0.1234 }, message: 'done · 10 epochs · 12.4 s', logDir: '/ws/lightning_logs/version_0' }));
    const view = formatStatus('ready', true, runs.current(), runs.active().length);
    assert.equal(view.text, '$(check) Fit LitModel · done · 10 epochs · 12.4 s · loss 0.123');
    assert.equal(view.command, 'torchbolt.ui.showRuns');
    assert.match(view.tooltip, /logs: \/ws\/lightning_logs\/version_0/);
    assert.equal(runs.active().length, 0, 'no spinner once the server says the run ended');
    runs.apply(st({ runId: 'r2', stage: 'train', epoch: 0, message: 'epoch 1/2', hardware: 'cpu ×2 · ddp · 32-true', worldSize: 2 }));
    assert.match(formatStatus('ready', true, runs.current()).tooltip, /^hardware: cpu ×2 · ddp · 32-true$/m);
  });

  it('shows failures and stops', () => {
    const runs = new RunTracker();
    runs.apply(st({ fn: 'validate', message: 'validating · step 4/20 · val_loss 0.5' }));
    assert.equal(formatStatus('ready', true, runs.current()).text, '$(sync~spin) Validate LitModel · validating · step 4/20 · val_loss 0.5');
    runs.apply(st({ fn: 'validate', status: 'failed', active: false, message: 'failed: RuntimeError', error: 'RuntimeError: CUDA out of memory' }));
    const failed = formatStatus('ready', true, runs.current());
    assert.equal(failed.text, '$(error) Validate LitModel · failed: RuntimeError');
    assert.equal(failed.error, true);
    assert.match(failed.tooltip, /CUDA out of memory/);

    const stopped = new RunTracker();
    stopped.apply(st({ runId: 'r2', status: 'stopping', message: 'epoch 1/3' }));
    assert.equal(stopped.active().length, 1, 'stopping is still running');
    stopped.apply(st({ runId: 'r2', status: 'interrupted', active: false, message: 'stopped · 1 epoch · 75.0 s' }));
    assert.equal(formatStatus('ready', true, stopped.current()).text, '$(debug-stop) Fit LitModel · stopped · 1 epoch · 75.0 s');
  });

  it('prefers the most recently updated active run and counts the others', () => {
    const runs = new RunTracker();
    runs.apply(st({ runId: 'a', label: 'A', message: '' }));
    runs.apply(st({ runId: 'b', label: 'B', message: '' }));
    assert.equal(formatStatus('ready', true, runs.current(), runs.active().length).text, '$(sync~spin) Fit B (+1)');
    runs.apply(st({ runId: 'a', label: 'A', message: 'epoch 2/2 · step 1/4 · loss 2' }));
    assert.equal(formatStatus('ready', true, runs.current(), runs.active().length).text, '$(sync~spin) Fit A · epoch 2/2 · step 1/4 · loss 2 (+1)');
  });

  it('ignores malformed payloads and non-numeric values', () => {
    const runs = new RunTracker();
    runs.apply(st({ metrics: { loss: 'NaN' as unknown as number, acc: 0.5 }, epoch: 'zero' as unknown as number }));
    assert.deepEqual(runs.current()!.metrics, { acc: 0.5 });
    assert.equal(runs.current()!.epoch, undefined);
    assert.equal(runs.apply(undefined as unknown as RunStateParams), undefined);
    assert.equal(runs.apply({ runId: 'x' } as unknown as RunStateParams), undefined);
  });

  it('a server crash outranks the run and marks running runs lost', () => {
    const runs = new RunTracker();
    runs.apply(st({}));
    runs.markAllLost();
    assert.equal(runs.active().length, 0);
    assert.equal(formatStatus('crashed', true, runs.current()).text, '$(error) torchbolt: server crashed');
  });

  it('shows the class name of a qualified target (model.py::LitModel)', () => {
    assert.equal(shortTarget('model.py::LitModel'), 'LitModel');
    assert.equal(shortTarget('pkg.models:LitModel'), 'LitModel');
    assert.equal(shortTarget('LitModel'), 'LitModel');
    const runs = new RunTracker();
    runs.apply(st({ label: undefined as unknown as string, target: 'model.py::LitModel' }));
    assert.equal(formatStatus('ready', true, runs.current()).text, '$(sync~spin) Fit LitModel');
    assert.equal(runs.current()!.targetId, 'model.py::LitModel');
  });

  it('formats numbers compactly and picks the loss', () => {
    assert.deepEqual([0.23101, 12.345, 123.45, 12345.6, 0.0000123, 0].map(formatNumber), ['0.231', '12.345', '123.5', '12346', '1.23e-5', '0']);
    assert.deepEqual(pickMetric({ acc: 0.9, train_loss_step: 0.5 }), ['train_loss', 0.5]);
    assert.deepEqual(pickMetric({ train_loss: 0.1, val_loss: 0.2 }, 'validate'), ['val_loss', 0.2]);
    assert.deepEqual(pickMetric({ acc: 0.9 }), ['acc', 0.9]);
    assert.equal(pickMetric({}), undefined);
  });

  it('drives the vscode status bar item', () => {
    const runs = new RunTracker();
    const bar = new StatusBar(runs);
    const item = mock.statusItems[0]!;
    assert.equal(item.visible, false, 'nothing shows before the server starts');
    bar.setServer('starting', true);
    assert.equal(item.text, '$(loading~spin) torchbolt');
    assert.equal(item.visible, true);
    bar.setServer('ready', true);
    runs.apply(st({ epoch: 2, maxEpochs: 10, message: 'epoch 3/10 · step 3/9 · loss 0.231' }));
    bar.update();
    assert.equal(item.text, '$(sync~spin) Fit LitModel · epoch 3/10 · step 3/9 · loss 0.231');
    assert.equal(item.command, 'torchbolt.ui.showRuns');
    bar.setServer('crashed', true);
    assert.equal(item.command, 'torchbolt.ui.showLogs');
    assert.ok(item.backgroundColor, 'error background');
  });
});
