import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { RunEventParams } from '../src/protocol';
import { formatNumber, formatStatus, pickMetric, RunTracker, shortTarget, StatusBar } from '../src/status';
import { mock } from './vscode-mock';

const base = { runId: 'r1', uri: 'file:///ws/model.py', target: 'LitModel' };
const ev = (event: Record<string, unknown>): RunEventParams => ({ ...base, event: { v: 1, t: 1000, ...event } as RunEventParams['event'] });

describe('runEvent -> status bar text', () => {
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

  it('follows a fit from start to finish', () => {
    const runs = new RunTracker();
    const text = () => formatStatus('ready', true, runs.current(), runs.active().length).text;
    runs.apply(ev({ type: 'run_started', fn: 'fit', target: 'LitModel', max_epochs: 10, num_training_batches: 50 }));
    assert.equal(text(), '$(sync~spin) Fit LitModel');
    runs.apply(ev({ type: 'progress', stage: 'sanity_check', epoch: 0, batch: 0, total: 2, global_step: 0, metrics: {} }));
    assert.equal(text(), '$(sync~spin) Fit LitModel · epoch 1/10 · sanity check');
    runs.apply(ev({ type: 'progress', stage: 'train', epoch: 2, batch: 7, total: 50, global_step: 107, metrics: { train_loss: 0.23101, lr: 0.001 } }));
    assert.equal(text(), '$(sync~spin) Fit LitModel · epoch 3/10 · train_loss 0.231');
    runs.apply(ev({ type: 'progress', stage: 'validate', epoch: 2, batch: 1, total: 10, global_step: 150, metrics: {} }));
    assert.equal(text(), '$(sync~spin) Fit LitModel · epoch 3/10 · validating · train_loss 0.231');
    runs.apply(ev({ type: 'metrics', epoch: 2, step: 150, metrics: { val_loss: 0.4, loss: 0.2 } }));
    assert.equal(text(), '$(sync~spin) Fit LitModel · epoch 3/10 · validating · loss 0.200');
    runs.apply(ev({ type: 'finished', status: 'completed', duration_s: 12.4, callback_metrics: { loss: 0.1234 }, best_model_path: null, log_dir: '/ws/lightning_logs/version_0' }));
    const view = formatStatus('ready', true, runs.current(), runs.active().length);
    assert.equal(view.text, '$(check) Fit LitModel · done in 12s · loss 0.123');
    assert.equal(view.command, 'torchbolt.ui.showRuns');
    assert.match(view.tooltip, /logs: \/ws\/lightning_logs\/version_0/);
    assert.equal(runs.active().length, 0);
  });

  it('shows failures, stops and non-fit runs', () => {
    const runs = new RunTracker();
    runs.apply(ev({ type: 'run_started', fn: 'validate', target: 'LitModel', max_epochs: null }));
    runs.apply(ev({ type: 'progress', stage: 'validate', batch: 4, total: 20, metrics: { val_loss: 0.5 } }));
    assert.equal(formatStatus('ready', true, runs.current()).text, '$(sync~spin) Validate LitModel · batch 5/20 · val_loss 0.500');
    runs.apply(ev({ type: 'failed', error_type: 'RuntimeError', message: 'CUDA out of memory' }));
    const failed = formatStatus('ready', true, runs.current());
    assert.equal(failed.text, '$(error) Validate LitModel · failed: RuntimeError');
    assert.equal(failed.error, true);
    assert.match(failed.tooltip, /CUDA out of memory/);

    const stopped = new RunTracker();
    stopped.apply({ ...ev({ type: 'run_started', fn: 'fit', max_epochs: 3 }), runId: 'r2' });
    stopped.apply({ ...ev({ type: 'finished', status: 'interrupted', duration_s: 75 }), runId: 'r2' });
    assert.equal(formatStatus('ready', true, stopped.current()).text, '$(debug-stop) Fit LitModel · stopped');
  });

  it('prefers the most recently updated active run and counts the others', () => {
    const runs = new RunTracker();
    runs.apply({ ...base, runId: 'a', event: { v: 1, t: 1, type: 'run_started', fn: 'fit', target: 'A', max_epochs: 2 } });
    runs.apply({ ...base, runId: 'b', target: 'B', event: { v: 1, t: 2, type: 'run_started', fn: 'fit', target: 'B', max_epochs: 5 } });
    assert.equal(formatStatus('ready', true, runs.current(), runs.active().length).text, '$(sync~spin) Fit B (+1)');
    runs.apply({ ...base, runId: 'a', event: { v: 1, t: 3, type: 'progress', stage: 'train', epoch: 1, batch: 0, total: 4, metrics: { loss: 2 } } });
    assert.equal(formatStatus('ready', true, runs.current(), runs.active().length).text, '$(sync~spin) Fit A · epoch 2/2 · loss 2.000 (+1)');
  });

  it('ignores unknown event types and malformed payloads (forward compatible)', () => {
    const runs = new RunTracker();
    runs.apply(ev({ type: 'run_started', fn: 'fit', max_epochs: 1 }));
    runs.apply(ev({ type: 'checkpoint_saved', path: '/x.ckpt' }));
    runs.apply(ev({ type: 'progress', stage: 'train', epoch: 'zero', metrics: { loss: 'NaN', acc: 0.5 } }));
    assert.equal(formatStatus('ready', true, runs.current()).text, '$(sync~spin) Fit LitModel · acc 0.500');
    assert.equal(runs.apply({ runId: 'r9', uri: '', target: '', event: undefined as unknown as RunEventParams['event'] }), undefined);
  });

  it('a server crash outranks the run and marks running runs lost', () => {
    const runs = new RunTracker();
    runs.apply(ev({ type: 'run_started', fn: 'fit', max_epochs: 1 }));
    runs.markAllLost();
    assert.equal(runs.active().length, 0);
    assert.equal(formatStatus('crashed', true, runs.current()).text, '$(error) torchbolt: server crashed');
  });

  it('shows the class name of a qualified target (model.py::LitModel)', () => {
    assert.equal(shortTarget('model.py::LitModel'), 'LitModel');
    assert.equal(shortTarget('pkg.models:LitModel'), 'LitModel');
    assert.equal(shortTarget('LitModel'), 'LitModel');
    const runs = new RunTracker();
    runs.apply({ ...base, target: 'model.py::LitModel', event: { v: 1, t: 1, type: 'run_started', fn: 'fit', target: 'model.py::LitModel', max_epochs: 2 } });
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
    runs.apply(ev({ type: 'run_started', fn: 'fit', max_epochs: 10 }));
    runs.apply(ev({ type: 'progress', stage: 'train', epoch: 2, batch: 3, total: 9, metrics: { loss: 0.231 } }));
    bar.update();
    assert.equal(item.text, '$(sync~spin) Fit LitModel · epoch 3/10 · loss 0.231');
    assert.equal(item.command, 'torchbolt.ui.showRuns');
    bar.setServer('crashed', true);
    assert.equal(item.command, 'torchbolt.ui.showLogs');
    assert.ok(item.backgroundColor, 'error background');
  });
});
