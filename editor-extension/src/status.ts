/**
 * Run tracking and the status bar item. `RunTracker` folds `torchbolt/runEvent` notifications into
 * per-run state; `formatStatus` turns that plus the server state into the item's text (pure, tested);
 * `StatusBar` owns the `vscode.StatusBarItem`.
 */
import * as vscode from 'vscode';
import { type Metrics, type RunEventParams, UiCommand } from './protocol';

export type ServerState = 'stopped' | 'starting' | 'ready' | 'crashed' | 'missing';

export type RunStatus = 'running' | 'finished' | 'stopped' | 'failed';

export interface RunState {
  runId: string;
  uri: string;
  /** Display name: the class name (the server may send a qualified `file.py::Class` target). */
  target: string;
  /** The server's target id, as sent. */
  targetId: string;
  fn: string;
  status: RunStatus;
  stage?: string;
  epoch?: number;
  maxEpochs?: number;
  batch?: number;
  total?: number;
  globalStep?: number;
  metrics: Metrics;
  startedAt?: number;
  updatedAt: number;
  durationS?: number;
  logDir?: string;
  bestModelPath?: string;
  error?: string;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function metricsOf(v: unknown): Metrics {
  const out: Metrics = {};
  if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (typeof x === 'number') out[k] = x;
  }
  return out;
}

/** `model.py::LitModel` or `pkg.mod:LitModel` -> `LitModel`; a bare class name stays as it is. */
export function shortTarget(target: string): string {
  const parts = String(target ?? '').split(/::|:/).filter(Boolean);
  return parts.length ? parts[parts.length - 1]! : String(target ?? '');
}

const STOPPED_STATUSES = new Set(['stopped', 'interrupted', 'cancelled', 'canceled', 'killed']);

/** Folds run events into state, one entry per runId. Unknown event types are ignored. */
export class RunTracker {
  private readonly runs = new Map<string, RunState>();

  apply(p: RunEventParams): RunState | undefined {
    if (!p || typeof p.runId !== 'string' || !p.event || typeof p.event !== 'object') return undefined;
    const e = p.event as Record<string, unknown> & { type: string; t?: number };
    if (typeof e.type !== 'string') return undefined;
    const t = num(e.t) ?? Date.now() / 1000;
    let run = this.runs.get(p.runId);
    if (!run) {
      run = { runId: p.runId, uri: p.uri, target: shortTarget(p.target), targetId: p.target, fn: 'fit', status: 'running', metrics: {}, updatedAt: t };
      this.runs.set(p.runId, run);
    }
    run.updatedAt = t;
    switch (e.type) {
      case 'run_started':
        run.fn = typeof e.fn === 'string' ? e.fn : run.fn;
        run.target = typeof e.target === 'string' ? shortTarget(e.target) : run.target;
        run.maxEpochs = num(e.max_epochs);
        run.total = num(e.num_training_batches);
        run.startedAt = t;
        run.status = 'running';
        break;
      case 'progress':
        run.stage = typeof e.stage === 'string' ? e.stage : run.stage;
        run.epoch = num(e.epoch) ?? run.epoch;
        run.batch = num(e.batch) ?? run.batch;
        run.total = num(e.total) ?? run.total;
        run.globalStep = num(e.global_step) ?? run.globalStep;
        Object.assign(run.metrics, metricsOf(e.metrics));
        break;
      case 'metrics':
        run.epoch = num(e.epoch) ?? run.epoch;
        run.globalStep = num(e.step) ?? run.globalStep;
        Object.assign(run.metrics, metricsOf(e.metrics));
        break;
      case 'finished': {
        const status = typeof e.status === 'string' ? e.status.toLowerCase() : 'finished';
        run.status = STOPPED_STATUSES.has(status) ? 'stopped' : status === 'failed' ? 'failed' : 'finished';
        run.durationS = num(e.duration_s);
        Object.assign(run.metrics, metricsOf(e.callback_metrics));
        run.logDir = typeof e.log_dir === 'string' ? e.log_dir : undefined;
        run.bestModelPath = typeof e.best_model_path === 'string' ? e.best_model_path : undefined;
        break;
      }
      case 'failed':
        run.status = 'failed';
        run.error = [e.error_type, e.message].filter((x) => typeof x === 'string' && x).join(': ') || 'failed';
        break;
      default:
        break;
    }
    return { ...run, metrics: { ...run.metrics } };
  }

  get(runId: string): RunState | undefined {
    return this.runs.get(runId);
  }

  all(): RunState[] {
    return [...this.runs.values()].sort((a, b) => b.updatedAt - a.updatedAt);
  }

  active(): RunState[] {
    return this.all().filter((r) => r.status === 'running');
  }

  /** The run the status bar shows: the most recently updated active run, else the latest one. */
  current(): RunState | undefined {
    return this.active()[0] ?? this.all()[0];
  }

  /** The server went away: its runs went with it. */
  markAllLost(): void {
    for (const r of this.runs.values()) {
      if (r.status === 'running') {
        r.status = 'failed';
        r.error = 'language server stopped';
      }
    }
  }

  clear(): void {
    this.runs.clear();
  }
}

const FN_LABEL: Record<string, string> = { fit: 'Fit', validate: 'Validate', test: 'Test', predict: 'Predict' };

export function fnLabel(fn: string): string {
  return FN_LABEL[fn] ?? (fn ? fn[0]!.toUpperCase() + fn.slice(1) : 'Run');
}

/** Compact number for the status bar: 0.231, 12.3, 1.23e-5. */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a === 0) return '0';
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(1);
  if (a >= 0.001) return x.toFixed(3);
  return x.toExponential(2);
}

/** The metric worth showing: a loss for the run's stage if there is one, else the first metric. */
export function pickMetric(metrics: Metrics, fn = 'fit'): [string, number] | undefined {
  const keys = Object.keys(metrics);
  if (keys.length === 0) return undefined;
  const prefix = fn === 'validate' ? 'val' : fn === 'test' ? 'test' : 'train';
  const preferred = ['loss', `${prefix}_loss`, `${prefix}_loss_step`, `${prefix}_loss_epoch`];
  const key = preferred.find((k) => k in metrics) ?? keys.find((k) => /loss/i.test(k)) ?? keys[0]!;
  return [key.replace(/_(step|epoch)$/, ''), metrics[key]!];
}

export interface StatusView {
  text: string;
  tooltip: string;
  command: string;
  error: boolean;
}

function runText(r: RunState): string {
  const parts = [`${fnLabel(r.fn)} ${r.target}`];
  if (r.status === 'running') {
    if (r.fn === 'fit') {
      if (r.epoch !== undefined) parts.push(r.maxEpochs !== undefined && r.maxEpochs > 0 ? `epoch ${r.epoch + 1}/${r.maxEpochs}` : `epoch ${r.epoch + 1}`);
      if (r.stage === 'validate' || r.stage === 'sanity_check') parts.push(r.stage === 'sanity_check' ? 'sanity check' : 'validating');
    } else if (r.batch !== undefined) {
      parts.push(r.total ? `batch ${r.batch + 1}/${r.total}` : `batch ${r.batch + 1}`);
    }
  } else if (r.status === 'finished') {
    parts.push(r.durationS !== undefined ? `done in ${formatDuration(r.durationS)}` : 'done');
  } else if (r.status === 'stopped') {
    parts.push('stopped');
  } else {
    parts.push(`failed${r.error ? `: ${r.error.split(':')[0]}` : ''}`);
  }
  const m = pickMetric(r.metrics, r.fn);
  if (m && r.status !== 'failed') parts.push(`${m[0]} ${formatNumber(m[1])}`);
  return parts.join(' · ');
}

export function formatDuration(s: number): string {
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m ${Math.round(s % 60)}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
}

const ICON: Record<RunStatus, string> = {
  running: '$(sync~spin)',
  finished: '$(check)',
  stopped: '$(debug-stop)',
  failed: '$(error)',
};

/** Status bar text/tooltip/click for the server state and the current run. */
export function formatStatus(server: ServerState, trusted: boolean, run: RunState | undefined, activeCount = 0): StatusView {
  const restricted = trusted ? '' : ' (restricted mode: run commands disabled until the workspace is trusted)';
  if (server === 'crashed') {
    return { text: '$(error) torchbolt: server crashed', tooltip: 'The torchbolt language server stopped. Click for the log.', command: UiCommand.showLogs, error: true };
  }
  if (server === 'missing') {
    return { text: '$(warning) torchbolt: not installed', tooltip: 'torchbolt_lsp is not importable in the selected interpreter. Click for the log.', command: UiCommand.showLogs, error: true };
  }
  if (run && server === 'ready') {
    const more = run.status === 'running' && activeCount > 1 ? ` (+${activeCount - 1})` : '';
    const lines = [`${fnLabel(run.fn)} ${run.target}: ${run.status}`, run.uri];
    if (run.stage) lines.push(`stage: ${run.stage}${run.batch !== undefined ? `, batch ${run.batch + 1}${run.total ? `/${run.total}` : ''}` : ''}`);
    if (run.globalStep !== undefined) lines.push(`global step: ${run.globalStep}`);
    for (const [k, v] of Object.entries(run.metrics)) lines.push(`${k}: ${formatNumber(v)}`);
    if (run.error) lines.push(`error: ${run.error}`);
    if (run.logDir) lines.push(`logs: ${run.logDir}`);
    lines.push('Click to show runs.');
    return { text: `${ICON[run.status]} ${runText(run)}${more}`, tooltip: lines.join('\n') + restricted, command: UiCommand.showRuns, error: run.status === 'failed' };
  }
  switch (server) {
    case 'starting':
      return { text: '$(loading~spin) torchbolt', tooltip: 'torchbolt language server starting…', command: UiCommand.showLogs, error: false };
    case 'ready':
      return trusted
        ? { text: '$(zap) torchbolt', tooltip: 'torchbolt language server ready. Click to show runs.', command: UiCommand.showRuns, error: false }
        : { text: '$(shield) torchbolt: restricted', tooltip: `torchbolt language server ready${restricted}.`, command: UiCommand.showLogs, error: false };
    default:
      return { text: '$(circle-slash) torchbolt', tooltip: 'torchbolt language server not running. Click for the log.', command: UiCommand.showLogs, error: false };
  }
}

/** The status bar item; call `update()` after any server-state or run change. */
export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  server: ServerState = 'stopped';
  trusted = true;

  constructor(readonly runs: RunTracker) {
    this.item = vscode.window.createStatusBarItem('torchbolt.status', vscode.StatusBarAlignment.Left, 50);
    this.item.name = 'torchbolt';
  }

  setServer(state: ServerState, trusted: boolean): void {
    this.server = state;
    this.trusted = trusted;
    this.update();
  }

  update(): void {
    const view = formatStatus(this.server, this.trusted, this.runs.current(), this.runs.active().length);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.command = view.command;
    this.item.backgroundColor = view.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    this.item.show();
  }

  get text(): string {
    return this.item.text;
  }

  dispose(): void {
    this.item.dispose();
  }
}
