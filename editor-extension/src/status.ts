/**
 * Run state and the status bar item. The server sends each run's state (`torchbolt/runState`, built from
 * its RunRecord) whenever it changes and once more when the run has ended; `RunTracker` keeps the latest
 * state per run (it does not fold events itself, so it cannot drift from the server), `formatStatus`
 * turns that plus the server state into the item's text (pure, tested), `StatusBar` owns the one
 * `vscode.StatusBarItem`.
 */
import * as vscode from 'vscode';
import { type Metrics, type RunStateParams, UiCommand } from './protocol';

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
  /** The server's own words: "epoch 2/3 · step 5/8 · loss 0.23" while running, the outcome after. */
  message?: string;
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
  /** "cpu ×2 · ddp · 32-true": where the run executes. */
  hardware?: string;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v ? v : undefined;
}

function metricsOf(v: unknown): Metrics {
  const out: Metrics = {};
  if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (typeof x === 'number' && Number.isFinite(x)) out[k] = x;
  }
  return out;
}

/** `model.py::LitModel` or `pkg.mod:LitModel` -> `LitModel`; a bare class name stays as it is. */
export function shortTarget(target: string): string {
  const parts = String(target ?? '').split(/::|:/).filter(Boolean);
  return parts.length ? parts[parts.length - 1]! : String(target ?? '');
}

/** The server's record status (starting | running | stopping | success | interrupted | failed) as shown here. */
export function runStatusOf(status: string, active: boolean | undefined): RunStatus {
  if (active === true || ['starting', 'running', 'stopping'].includes(status)) return 'running';
  if (status === 'success') return 'finished';
  if (status === 'failed') return 'failed';
  return 'stopped';
}

/** The latest server-sent state of each run. Malformed payloads are ignored. */
export class RunTracker {
  private readonly runs = new Map<string, RunState>();
  private seq = 0;

  apply(p: RunStateParams): RunState | undefined {
    if (!p || typeof p !== 'object' || typeof p.runId !== 'string' || typeof p.status !== 'string') return undefined;
    const targetId = str(p.target) ?? '';
    const run: RunState = {
      runId: p.runId,
      uri: str(p.uri) ?? '',
      target: str(p.label) ?? shortTarget(targetId),
      targetId,
      fn: str(p.fn) ?? 'fit',
      status: runStatusOf(p.status, typeof p.active === 'boolean' ? p.active : undefined),
      message: str(p.message),
      stage: str(p.stage),
      epoch: num(p.epoch),
      maxEpochs: num(p.maxEpochs),
      batch: num(p.batch),
      total: num(p.total),
      globalStep: num(p.globalStep),
      metrics: metricsOf(p.metrics),
      startedAt: num(p.startedAt),
      updatedAt: ++this.seq,
      durationS: num(p.durationS),
      logDir: str(p.logDir),
      bestModelPath: str(p.bestModelPath),
      error: str(p.error),
      hardware: str(p.hardware),
    };
    this.runs.set(run.runId, run);
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
        r.message = 'failed: language server stopped';
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
  if (r.message) {
    parts.push(r.message); // the server's words: the same as its progress report and end-of-run message
  } else if (r.status === 'running') {
    if (r.epoch !== undefined && r.fn === 'fit') parts.push(r.maxEpochs !== undefined && r.maxEpochs > 0 ? `epoch ${r.epoch + 1}/${r.maxEpochs}` : `epoch ${r.epoch + 1}`);
  } else if (r.status === 'finished') {
    parts.push(r.durationS !== undefined ? `done in ${formatDuration(r.durationS)}` : 'done');
  } else if (r.status === 'stopped') {
    parts.push('stopped');
  } else {
    parts.push(`failed${r.error ? `: ${r.error.split(':')[0]}` : ''}`);
  }
  const m = pickMetric(r.metrics, r.fn);
  // while running the server's message already carries the live loss
  if (m && (r.status === 'finished' || r.status === 'stopped') && !(r.message ?? '').includes(`${m[0]} `)) {
    parts.push(`${m[0]} ${formatNumber(m[1])}`);
  }
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
    if (run.hardware) lines.push(`hardware: ${run.hardware}`);
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
