/**
 * The language server's lifecycle: resolve the interpreter, check that torchbolt_lsp imports, start
 * `<python> -m torchbolt_lsp` over stdio with vscode-languageclient, restart through one debounced path,
 * and report crashes with the last log lines and a Restart action instead of dying silently.
 */
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  RevealOutputChannelOn,
  type LanguageClientOptions,
  type ServerOptions,
  State,
} from 'vscode-languageclient/node';
import type { Logger } from './log';
import { type InitializationOptions, RUN_EVENT_NOTIFICATION, RUN_STATE_NOTIFICATION, type RunEventParams, type RunStateParams } from './protocol';
import {
  checkImportable,
  installCommand,
  type Interpreter,
  isTorchboltCheckout,
  onPythonInterpreterChange,
  resolveInterpreter,
  shellQuote,
} from './python';
import { RestartScheduler } from './restart';
import { affectsServer, primaryFolder, readSettings, toInitializationOptions } from './settings';
import { fnLabel, formatNumber, pickMetric, type ServerState, type StatusBar } from './status';
import { isTrusted, onTrustGranted } from './trust';

export const CLIENT_ID = 'torchbolt'; // vscode-languageclient reads `torchbolt.trace.server` from this id
export const CRASH_LOG_LINES = 20;
export const CRASH_ACTIONS = ['Restart', 'Show Logs'] as const;

/** The crash notification's text: what happened, then the last log lines (the server's stderr). */
export function crashMessage(headline: string, tail: string[]): string {
  const lines = tail.map((l) => (l.length > 200 ? `${l.slice(0, 197)}...` : l));
  return lines.length ? `${headline}\n\nLast log lines:\n${lines.join('\n')}` : `${headline} The log is empty.`;
}

export class ServerManager implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private state: ServerState = 'stopped';
  private started = false;
  private crashReported = false;
  private readonly scheduler: RestartScheduler;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly runEvents = new vscode.EventEmitter<RunEventParams>();
  private readonly stateChanged = new vscode.EventEmitter<ServerState>();
  private pythonWatch: vscode.Disposable | undefined;
  interpreter: Interpreter | undefined;
  initOptions: InitializationOptions | undefined;
  readonly onRunEvent = this.runEvents.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly log: Logger,
    readonly status: StatusBar,
  ) {
    this.scheduler = new RestartScheduler((reason) => this.restart(reason), undefined, undefined, (e) =>
      this.log.error(`restart failed: ${String(e)}`),
    );
    this.disposables.push(
      this.runEvents,
      this.stateChanged,
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (affectsServer(e)) this.scheduleRestart('settings changed');
      }),
      onTrustGranted(() => this.scheduleRestart('workspace trusted')),
    );
  }

  /** Starts the server on the first Python document; nothing happens before one is open. */
  startWhenPythonOpens(): void {
    const isPython = (d: vscode.TextDocument) => d.languageId === 'python';
    if (vscode.workspace.textDocuments.some(isPython)) {
      void this.ensureStarted();
      return;
    }
    const sub = vscode.workspace.onDidOpenTextDocument((d) => {
      if (!isPython(d)) return;
      sub.dispose();
      void this.ensureStarted();
    });
    this.disposables.push(sub);
  }

  /** Starts the server unless it was started already; resolves once it is running (or failed). */
  async ensureStarted(): Promise<void> {
    if (this.started) {
      if (this.client && this.client.state === State.Starting) await this.client.start().catch(() => {});
      return;
    }
    this.started = true;
    await this.scheduler.now('first Python file');
  }

  /** Debounced restart (settings, interpreter, trust). Ignored until the server was first started. */
  scheduleRestart(reason: string): void {
    if (this.started) this.scheduler.schedule(reason);
  }

  /** Immediate restart (the Restart Server command, the crash message's Restart action). */
  restartNow(reason: string): Promise<void> {
    this.started = true;
    return this.scheduler.now(reason);
  }

  get serverState(): ServerState {
    return this.state;
  }

  private setState(state: ServerState): void {
    this.state = state;
    this.status.setServer(state, isTrusted());
    this.stateChanged.fire(state);
  }

  /** Resolves once the server is no longer starting (or after `ms`). */
  private settled(ms = 60000): Promise<void> {
    if (this.state !== 'starting') return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const sub = this.stateChanged.event((s) => s !== 'starting' && done());
      function done() {
        clearTimeout(timer);
        sub.dispose();
        resolve();
      }
    });
  }

  private async restart(reason: string): Promise<void> {
    this.log.clearTail(); // a crash report quotes this server's lines, not the previous one's
    this.log.info(`(re)starting the language server: ${reason}`);
    await this.stopClient();
    await this.start();
  }

  private async stopClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    try {
      if (client.state !== State.Stopped) await client.stop(5000);
    } catch (e) {
      this.log.warn(`stopping the server: ${String(e)}`);
    }
    await client.dispose().catch(() => {});
    this.status.runs.markAllLost();
  }

  private async start(): Promise<void> {
    this.setState('starting');
    const folder = primaryFolder();
    const trusted = isTrusted();
    const settings = readSettings();
    const interpreter = await resolveInterpreter({
      setting: settings.interpreter,
      resource: folder?.uri,
      trusted,
      workspaceFolders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
      getExtension: (id) => vscode.extensions.getExtension(id),
      log: (m) => this.log.info(m),
    });
    this.interpreter = interpreter;
    this.watchPythonExtension();
    // `-m` puts the cwd on sys.path: never let an untrusted workspace shadow torchbolt_lsp.
    const cwd = trusted && folder ? folder.uri.fsPath : this.context.extensionPath;
    this.log.info(`interpreter: ${interpreter.path} (from ${interpreter.source}); trusted: ${trusted}`);

    const check = await checkImportable(interpreter.path, cwd);
    if (!check.ok) {
      this.log.error(`torchbolt_lsp is not importable with ${interpreter.path}: ${check.detail}`);
      this.setState('missing');
      void this.offerInstall(interpreter, check.missing, trusted);
      return;
    }

    this.initOptions = toInitializationOptions(settings, trusted, interpreter.path);
    const serverOptions: ServerOptions = {
      command: interpreter.path,
      // No `transport`: TransportKind.stdio would append `--stdio`, which the contract does not have.
      args: ['-m', 'torchbolt_lsp'],
      options: { cwd, env: { ...process.env, PYTHONUNBUFFERED: '1' } },
    };
    const channel = this.log.clientChannel(true);
    const clientOptions: LanguageClientOptions = {
      documentSelector: [
        { scheme: 'file', language: 'python' },
        { scheme: 'untitled', language: 'python' },
      ],
      outputChannel: channel,
      traceOutputChannel: this.log.clientChannel(false),
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationOptions: this.initOptions,
      // Our crash report (below) says it once, with the server's output; no extra toast from the client.
      initializationFailedHandler: (error) => {
        this.log.error(`initialize failed: ${error instanceof Error ? error.message : String(error)}`);
        return false;
      },
      errorHandler: {
        error: (_error, _message, count) => ({ action: count !== undefined && count <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown, handled: true }),
        closed: () => {
          void this.reportCrash('The torchbolt language server stopped unexpectedly.');
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
    };
    const client = new LanguageClient(CLIENT_ID, 'torchbolt language server', serverOptions, clientOptions);
    this.client = client;
    this.crashReported = false;
    // Events are passed on to listeners as they are; the status item renders the server's run state.
    client.onNotification(RUN_EVENT_NOTIFICATION, (params: RunEventParams) => this.runEvents.fire(params));
    client.onNotification(RUN_STATE_NOTIFICATION, (params: RunStateParams) => this.handleRunState(params));
    try {
      await client.start();
      if (this.client !== client) return; // superseded by a newer restart
      // start() resolves even when initialize failed; the client state says what happened
      if (!client.isRunning()) {
        void this.reportCrash('The torchbolt language server failed to start.');
        return;
      }
      this.setState('ready');
      this.log.info('language server ready');
    } catch (e) {
      this.log.error(`start failed: ${String(e)}`);
      if (this.client === client) void this.reportCrash('The torchbolt language server failed to start.');
    }
  }

  /** One status item, rendered from the server's state; the end of a run is logged once. (The server's
   * own end-of-run message, with its TensorBoard action, is the only notification: no second one here.) */
  handleRunState(params: RunStateParams): void {
    const before = params && typeof params.runId === 'string' ? this.status.runs.get(params.runId) : undefined;
    const run = this.status.runs.apply(params);
    this.status.update();
    if (!run) return;
    if (!before) this.log.info(`run ${run.runId}: ${fnLabel(run.fn)} ${run.target} started`);
    const ended = run.status !== 'running' && (before === undefined || before.status === 'running');
    if (!ended) return;
    const m = pickMetric(run.metrics, run.fn);
    const summary = `${fnLabel(run.fn)} ${run.target} ${run.message ?? run.status}${m && run.status !== 'failed' ? ` · ${m[0]} ${formatNumber(m[1])}` : ''}`;
    if (run.status === 'failed') this.log.error(`run ${run.runId}: ${summary}${run.error ? ` (${run.error})` : ''}`);
    else this.log.info(`run ${run.runId}: ${summary}${run.logDir ? ` (logs: ${run.logDir})` : ''}`);
  }

  private watchPythonExtension(): void {
    if (this.pythonWatch) return;
    void onPythonInterpreterChange((id) => vscode.extensions.getExtension(id), () => this.scheduleRestart('Python interpreter changed')).then((d) => {
      if (d) {
        this.pythonWatch = d;
        this.disposables.push(d);
      }
    });
  }

  private async reportCrash(headline: string): Promise<void> {
    if (this.crashReported) return;
    this.crashReported = true;
    this.setState('crashed');
    this.status.runs.markAllLost();
    this.status.update();
    // stderr may still be draining after the pipe closed: let the last lines land first
    await new Promise((r) => setTimeout(r, 300));
    const tail = this.log.tail(CRASH_LOG_LINES);
    this.log.error(headline);
    const pick = await vscode.window.showErrorMessage(crashMessage(headline, tail), ...CRASH_ACTIONS);
    if (pick === 'Restart') await this.restartNow('restart after crash');
    else if (pick === 'Show Logs') this.log.show();
  }

  private async offerInstall(interpreter: Interpreter, missing: boolean, trusted: boolean): Promise<void> {
    if (missing) {
      const pick = await vscode.window.showErrorMessage(
        `torchbolt: cannot run the Python interpreter ${interpreter.path} (from ${interpreter.source}). Set torchbolt.interpreter to a Python with torchbolt installed.`,
        'Open Settings',
        'Show Logs',
      );
      if (pick === 'Open Settings') await vscode.commands.executeCommand('workbench.action.openSettings', 'torchbolt.interpreter');
      else if (pick === 'Show Logs') this.log.show();
      return;
    }
    const root = primaryFolder()?.uri.fsPath;
    const argv = installCommand(interpreter.path, trusted && isTorchboltCheckout(root) ? root : undefined);
    const cmd = shellQuote(argv);
    const pick = await vscode.window.showWarningMessage(
      `torchbolt: the language server (torchbolt_lsp) is not installed in ${interpreter.path}. Install it with: ${cmd}`,
      'Install',
      'Choose Interpreter',
      'Show Logs',
    );
    if (pick === 'Install') this.runInstall(argv);
    else if (pick === 'Choose Interpreter') await vscode.commands.executeCommand('workbench.action.openSettings', 'torchbolt.interpreter');
    else if (pick === 'Show Logs') this.log.show();
  }

  /** Runs the install in a visible terminal (the user sees the command and pip's output), then restarts. */
  private runInstall(argv: string[]): void {
    this.log.info(`installing: ${shellQuote(argv)}`);
    const terminal = vscode.window.createTerminal({ name: 'torchbolt: install', shellPath: argv[0], shellArgs: argv.slice(1) });
    terminal.show();
    const sub = vscode.window.onDidCloseTerminal((t) => {
      if (t !== terminal) return;
      sub.dispose();
      const code = t.exitStatus?.code;
      this.log.info(`install finished with exit code ${String(code)}`);
      if (code === 0) void this.restartNow('torchbolt installed');
      else void vscode.window.showErrorMessage(`torchbolt: install failed (exit code ${String(code)}): ${shellQuote(argv)}`, 'Show Logs');
    });
    this.disposables.push(sub);
  }

  /** workspace/executeCommand on the server. Starts the server first if needed. */
  async executeCommand(command: string, args: unknown[]): Promise<unknown> {
    await this.ensureStarted();
    await this.settled();
    const client = this.client;
    if (!client || this.state !== 'ready') {
      const pick = await vscode.window.showErrorMessage(
        `torchbolt: the language server is not running (${this.state}), so ${command} cannot run.`,
        'Restart Server',
        'Show Logs',
      );
      if (pick === 'Restart Server') await this.restartNow('command needs the server');
      else if (pick === 'Show Logs') this.log.show();
      return undefined;
    }
    this.log.info(`executeCommand ${command} ${JSON.stringify(args)}`);
    return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
  }

  async dispose(): Promise<void> {
    this.scheduler.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
    await this.stopClient();
  }
}
