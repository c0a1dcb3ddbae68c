/**
 * The wire contract with the torchbolt language server: command ids, argument shapes and the
 * `torchbolt/runEvent` and `torchbolt/runState` notifications. Shared by the extension and the protocol test, and free of
 * `vscode` imports so that plain Node can load it.
 */

/** Server-side command ids (workspace/executeCommand). vscode-languageclient registers these itself. */
export const ServerCommand = {
  fit: 'torchbolt.fit',
  validate: 'torchbolt.validate',
  test: 'torchbolt.test',
  stop: 'torchbolt.stop',
  openTensorBoard: 'torchbolt.openTensorBoard',
  runs: 'torchbolt.runs',
} as const;

/** UI command ids contributed by the extension (never the server's ids: those would collide). */
export const UiCommand = {
  fit: 'torchbolt.ui.fit',
  validate: 'torchbolt.ui.validate',
  test: 'torchbolt.ui.test',
  stop: 'torchbolt.ui.stop',
  openTensorBoard: 'torchbolt.ui.openTensorBoard',
  showRuns: 'torchbolt.ui.showRuns',
  restartServer: 'torchbolt.ui.restartServer',
  showLogs: 'torchbolt.ui.showLogs',
} as const;

export type RunFn = 'fit' | 'validate' | 'test';

/** Argument of torchbolt.fit / validate / test. */
export interface RunArgs {
  uri: string;
  position: { line: number; character: number };
  className?: string;
}

/** Argument of torchbolt.stop (and openTensorBoard). */
export interface StopArgs {
  uri?: string;
  className?: string;
  runId?: string;
}

export const RUN_EVENT_NOTIFICATION = 'torchbolt/runEvent';

export type Metrics = Record<string, number>;

interface EventBase {
  v: number;
  t: number;
}
export interface RunStartedEvent extends EventBase {
  type: 'run_started';
  fn: string;
  target: string;
  max_epochs?: number | null;
  num_training_batches?: number | null;
  accelerator?: string | null;
  devices?: number | null;
  device_ids?: number[] | null;
  strategy?: string | null;
  precision?: string | null;
  num_nodes?: number | null;
  world_size?: number | null;
}
export interface ProgressEvent extends EventBase {
  type: 'progress';
  stage: 'train' | 'validate' | 'sanity_check' | 'test' | 'predict' | string;
  epoch?: number | null;
  batch?: number | null;
  total?: number | null;
  global_step?: number | null;
  metrics?: Metrics;
}
export interface MetricsEvent extends EventBase {
  type: 'metrics';
  epoch?: number | null;
  step?: number | null;
  metrics?: Metrics;
}
export interface FinishedEvent extends EventBase {
  type: 'finished';
  status?: string;
  duration_s?: number;
  callback_metrics?: Metrics;
  best_model_path?: string | null;
  log_dir?: string | null;
}
export interface FailedEvent extends EventBase {
  type: 'failed';
  error_type?: string;
  message?: string;
  /** The global rank that raised, in a multi-process run. */
  rank?: number | null;
}
/** Event types this client does not know are kept (forward compatible) and ignored. */
export interface OtherEvent extends EventBase {
  type: string;
  [key: string]: unknown;
}
export type RunEvent = RunStartedEvent | ProgressEvent | MetricsEvent | FinishedEvent | FailedEvent;

export interface RunEventParams {
  runId: string;
  uri: string;
  target: string;
  event: RunEvent | OtherEvent;
}

/** `torchbolt/runState`: the run's state from the server's record, sent when it changes and at the end. */
export const RUN_STATE_NOTIFICATION = 'torchbolt/runState';

export interface RunStateParams {
  runId: string;
  uri: string;
  /** The server's target id (`/abs/model.py::LitModel`). */
  target: string;
  /** What the user sees: the class name. */
  label: string;
  fn: string;
  /** starting | running | stopping | success | interrupted | failed */
  status: string;
  active: boolean;
  stage?: string | null;
  epoch?: number | null;
  maxEpochs?: number | null;
  batch?: number | null;
  total?: number | null;
  globalStep?: number | null;
  metrics?: Metrics;
  percentage?: number | null;
  /** "epoch 2/3 · step 5/8 · loss 0.231" while active; the outcome ("done · 3 epochs · 4.2 s") after. */
  message?: string;
  startedAt?: number;
  durationS?: number | null;
  logDir?: string | null;
  bestModelPath?: string | null;
  error?: string | null;
  /** Where the run executes: "cpu ×2 · ddp · 32-true" (absent when the runtime did not say). */
  hardware?: string | null;
  /** Processes in the run (devices × nodes). */
  worldSize?: number | null;
}

/** initializationOptions the extension sends (and re-sends on every restart). */
export interface InitializationOptions {
  trusted: boolean;
  /** The extension renders torchbolt/runState in its status item: the server sends no work-done progress. */
  runStatusItem: boolean;
  /** VS Code shows window/showMessageRequest as a toast that does not block typing. */
  messageRequestToasts: boolean;
  settings: {
    lint: { select: string[]; ignore: string[] };
    inlayHints: { enable: boolean };
    run: { interpreter: string | null; trainer: Record<string, unknown> };
  };
}
