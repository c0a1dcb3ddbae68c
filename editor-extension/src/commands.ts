/**
 * The UI commands. They map onto the server's workspace/executeCommand ids with the active editor's
 * URI and cursor; the server's own ids (torchbolt.fit, ...) are registered by vscode-languageclient.
 */
import * as vscode from 'vscode';
import type { Logger } from './log';
import { type RunArgs, type RunFn, ServerCommand, type StopArgs, UiCommand } from './protocol';
import type { ServerManager } from './server';
import { fnLabel, formatNumber, pickMetric, type RunState, shortTarget } from './status';
import { ensureTrustedForRun } from './trust';

/** Builds the torchbolt.fit/validate/test argument from a document URI and a cursor. */
export function runArgs(uri: string, position: { line: number; character: number }, className?: string): RunArgs {
  const args: RunArgs = { uri, position: { line: position.line, character: position.character } };
  if (className) args.className = className;
  return args;
}

/** What a UI run command may be called with: nothing (palette), a Uri, or {uri, className, position}. */
type RunCommandArg = vscode.Uri | { uri?: string | vscode.Uri; className?: string; position?: { line: number; character: number } } | undefined;

function toUriString(u: string | vscode.Uri): string {
  return typeof u === 'string' ? u : u.toString();
}

async function runTarget(arg: RunCommandArg, className?: string): Promise<RunArgs | undefined> {
  const editor = vscode.window.activeTextEditor;
  let uri: string | undefined;
  let position: { line: number; character: number } | undefined;
  if (arg instanceof vscode.Uri) uri = arg.toString();
  else if (arg && arg.uri) {
    uri = toUriString(arg.uri);
    position = arg.position;
    className = arg.className ?? className;
  }
  if (!uri && editor && editor.document.languageId === 'python') uri = editor.document.uri.toString();
  if (!uri) {
    void vscode.window.showWarningMessage('torchbolt: open a Python file with a LightningModule (or put the cursor in one) first.');
    return undefined;
  }
  if (!position) {
    position = editor && editor.document.uri.toString() === uri ? editor.selection.active : { line: 0, character: 0 };
  }
  // The run imports the file from disk: save it first so the run sees what the editor shows.
  const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
  if (doc?.isDirty) await doc.save();
  return runArgs(uri, position, className);
}

function describe(r: RunState): string {
  const m = pickMetric(r.metrics, r.fn);
  return `${r.status}${m ? ` · ${m[0]} ${formatNumber(m[1])}` : ''}`;
}

interface ServerRun {
  runId: string;
  target?: string;
  status?: string;
  uri?: string;
  fn?: string;
  detail?: string;
}

/** Accepts the server's torchbolt.runs answer as an array or `{runs: [...]}`, with runId or run_id. */
export function normalizeServerRuns(result: unknown): ServerRun[] {
  const list = Array.isArray(result) ? result : Array.isArray((result as { runs?: unknown })?.runs) ? (result as { runs: unknown[] }).runs : [];
  const out: ServerRun[] = [];
  for (const item of list) {
    if (!item || typeof item !== 'object') continue;
    const o = item as Record<string, unknown>;
    const runId = typeof o.runId === 'string' ? o.runId : typeof o.run_id === 'string' ? o.run_id : undefined;
    if (!runId) continue;
    const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
    const target = str('target');
    out.push({
      runId,
      target: target ? shortTarget(target) : str('label'),
      status: str('status'),
      uri: str('uri'),
      fn: str('fn'),
      detail: [str('comparison'), str('logDir')].filter(Boolean).join(' · ') || undefined,
    });
  }
  return out;
}

/** A URL in the server's openTensorBoard answer (a string or `{url}`), if any. */
export function urlOf(result: unknown): string | undefined {
  if (typeof result === 'string' && /^https?:\/\//.test(result)) return result;
  const url = (result as { url?: unknown } | undefined)?.url;
  return typeof url === 'string' ? url : undefined;
}

export function registerCommands(context: vscode.ExtensionContext, server: ServerManager, log: Logger): void {
  const runs = server.status.runs;
  const reportError = (what: string, e: unknown) => {
    const msg = e instanceof Error ? e.message : String(e);
    log.error(`${what}: ${msg}`);
    void vscode.window.showErrorMessage(`torchbolt: ${what} failed: ${msg}`, 'Show Logs').then((p) => p && log.show());
  };

  const startRun = (fn: RunFn) => async (arg?: RunCommandArg, className?: string) => {
    if (!(await ensureTrustedForRun())) return undefined;
    const args = await runTarget(arg, className);
    if (!args) return undefined;
    try {
      return await server.executeCommand(ServerCommand[fn], [args]);
    } catch (e) {
      reportError(fnLabel(fn), e);
      return undefined;
    }
  };

  const stop = async (arg?: StopArgs) => {
    let target: StopArgs | undefined = arg && (arg.runId || arg.uri) ? arg : undefined;
    if (!target) {
      const active = runs.active();
      if (active.length === 1) target = { runId: active[0]!.runId };
      else if (active.length > 1) {
        const pick = await vscode.window.showQuickPick(
          active.map((r) => ({ label: `${fnLabel(r.fn)} ${r.target}`, description: describe(r), runId: r.runId })),
          { placeHolder: 'Stop which run?' },
        );
        if (!pick) return undefined;
        target = { runId: pick.runId };
      } else {
        const uri = vscode.window.activeTextEditor?.document.uri.toString();
        if (!uri) {
          void vscode.window.showInformationMessage('torchbolt: no run is active.');
          return undefined;
        }
        target = { uri };
      }
    }
    try {
      return await server.executeCommand(ServerCommand.stop, [target]);
    } catch (e) {
      reportError('Stop', e);
      return undefined;
    }
  };

  const openTensorBoard = async (arg?: StopArgs) => {
    const current = runs.current();
    const uri = vscode.window.activeTextEditor?.document.uri.toString();
    const target: StopArgs = arg ?? (current ? { runId: current.runId, uri: current.uri } : uri ? { uri } : {});
    try {
      const result = await server.executeCommand(ServerCommand.openTensorBoard, [target]);
      // The server asks the client to open the URL itself (window/showDocument); offer it here too.
      const url = urlOf(result);
      if (url) {
        log.info(`TensorBoard: ${url}`);
        void vscode.window.showInformationMessage(`torchbolt: TensorBoard is at ${url}`, 'Open in Browser').then((pick) => {
          if (pick) void vscode.env.openExternal(vscode.Uri.parse(url));
        });
      }
      return result;
    } catch (e) {
      reportError('Open TensorBoard', e);
      return undefined;
    }
  };

  const showRuns = async () => {
    let fromServer: ServerRun[] = [];
    try {
      fromServer = normalizeServerRuns(await server.executeCommand(ServerCommand.runs, []));
    } catch (e) {
      log.warn(`torchbolt.runs: ${String(e)}`);
    }
    const known = new Map(runs.all().map((r) => [r.runId, r]));
    const items: (vscode.QuickPickItem & { runId: string; running: boolean; uri?: string })[] = runs.all().map((r) => ({
      label: `${r.status === 'running' ? '$(sync~spin)' : r.status === 'failed' ? '$(error)' : '$(check)'} ${fnLabel(r.fn)} ${r.target}`,
      description: describe(r),
      detail: r.logDir ?? r.uri,
      runId: r.runId,
      running: r.status === 'running',
      uri: r.uri,
    }));
    for (const s of fromServer) {
      if (known.has(s.runId)) continue;
      items.push({ label: `${fnLabel(s.fn ?? 'fit')} ${s.target ?? s.runId}`, description: s.status ?? '', detail: s.detail ?? s.uri, runId: s.runId, running: s.status === 'running', uri: s.uri });
    }
    if (items.length === 0) {
      const pick = await vscode.window.showInformationMessage('torchbolt: no runs yet. Click "Fit" above a LightningModule to start one.', 'Show Logs');
      if (pick) log.show();
      return;
    }
    const run = await vscode.window.showQuickPick(items, { placeHolder: 'torchbolt runs' });
    if (!run) return;
    const actions = [...(run.running ? ['Stop'] : []), 'Open TensorBoard', ...(run.uri ? ['Open File'] : []), 'Show Logs'];
    const action = await vscode.window.showQuickPick(actions, { placeHolder: run.label });
    if (action === 'Stop') await stop({ runId: run.runId });
    else if (action === 'Open TensorBoard') await openTensorBoard({ runId: run.runId, uri: run.uri });
    else if (action === 'Open File' && run.uri) await vscode.window.showTextDocument(vscode.Uri.parse(run.uri));
    else if (action === 'Show Logs') log.show();
  };

  context.subscriptions.push(
    vscode.commands.registerCommand(UiCommand.fit, startRun('fit')),
    vscode.commands.registerCommand(UiCommand.validate, startRun('validate')),
    vscode.commands.registerCommand(UiCommand.test, startRun('test')),
    vscode.commands.registerCommand(UiCommand.stop, stop),
    vscode.commands.registerCommand(UiCommand.openTensorBoard, openTensorBoard),
    vscode.commands.registerCommand(UiCommand.showRuns, showRuns),
    vscode.commands.registerCommand(UiCommand.restartServer, () => server.restartNow('Restart Server command')),
    vscode.commands.registerCommand(UiCommand.showLogs, () => log.show()),
  );
}
