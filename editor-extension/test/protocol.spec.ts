/**
 * Protocol test: the REAL Python server (`$PYTHON -m torchbolt_lsp`) spoken to over stdio with the same
 * JSON-RPC library vscode-languageclient uses. Checks the contract the extension relies on: initialize
 * with our initializationOptions, hook completion, the Fit code lens, `torchbolt.fit`, the
 * `torchbolt/runEvent` stream (fed through the status-bar formatter) and the metric inlay hint.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import {
  type ClientCapabilities,
  CodeLensRequest,
  CompletionRequest,
  createProtocolConnection,
  DidOpenTextDocumentNotification,
  ExecuteCommandRequest,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  type InitializeResult,
  InlayHintRequest,
  type MessageConnection,
  type ProtocolConnection,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-languageserver-protocol/node';
import { RUN_EVENT_NOTIFICATION, RUN_STATE_NOTIFICATION, type RunEventParams, type RunStateParams, ServerCommand } from '../src/protocol';
import { parseSettings, toInitializationOptions } from '../src/settings';
import { formatStatus, RunTracker } from '../src/status';

const PYTHON = process.env.PYTHON || path.resolve(__dirname, '../../../.venv/bin/python');
const FIXTURE = path.resolve(__dirname, '../../test/fixtures/workspace');
const RUN_TIMEOUT_MS = Number(process.env.TORCHBOLT_RUN_TIMEOUT_MS || 240000);

/** The client capabilities that matter here, as VS Code 1.9x sends them. */
const capabilities: ClientCapabilities = {
  general: { positionEncodings: ['utf-16'] },
  window: { workDoneProgress: true, showDocument: { support: true }, showMessage: { messageActionItem: { additionalPropertiesSupport: true } } },
  workspace: {
    applyEdit: true,
    configuration: true,
    workspaceFolders: true,
    executeCommand: { dynamicRegistration: true },
    codeLens: { refreshSupport: true },
    inlayHint: { refreshSupport: true },
    diagnostics: { refreshSupport: true },
  },
  textDocument: {
    synchronization: { dynamicRegistration: true, didSave: true, willSave: true },
    completion: {
      completionItem: { snippetSupport: true, documentationFormat: ['markdown', 'plaintext'], insertReplaceSupport: true, labelDetailsSupport: true, resolveSupport: { properties: ['documentation', 'detail'] } },
      contextSupport: true,
    },
    hover: { contentFormat: ['markdown', 'plaintext'] },
    codeAction: { codeActionLiteralSupport: { codeActionKind: { valueSet: ['', 'quickfix', 'refactor', 'source', 'source.fixAll'] } }, isPreferredSupport: true, resolveSupport: { properties: ['edit'] } },
    codeLens: {},
    inlayHint: { resolveSupport: { properties: ['tooltip', 'label.tooltip'] } },
    publishDiagnostics: { relatedInformation: true, codeDescriptionSupport: true, dataSupport: true },
  },
};

function labelText(label: string | { value: string }[]): string {
  return typeof label === 'string' ? label : label.map((p) => p.value).join('');
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

describe('protocol: the real torchbolt language server', { timeout: RUN_TIMEOUT_MS + 60000 }, () => {
  let proc: ChildProcess;
  let conn: ProtocolConnection;
  let ws: string;
  let stderr = '';
  let init: InitializeResult;
  const events: RunEventParams[] = [];
  const states: RunStateParams[] = [];
  const serverRequests: string[] = [];
  let eventWaiters: (() => void)[] = [];
  const modelPath = () => path.join(ws, 'model.py');
  const modelUri = () => pathToFileURL(modelPath()).toString();

  /** Resolves once an event satisfying `pred` arrived (or already had). */
  function waitForEvent(pred: (e: RunEventParams) => boolean, ms: number, what: string): Promise<RunEventParams> {
    return withTimeout(
      new Promise<RunEventParams>((resolve) => {
        const check = (): void => {
          const hit = events.find(pred);
          if (hit) resolve(hit);
          else eventWaiters.push(check); // waiters are one-shot: wait for the next event again
        };
        check();
      }),
      ms,
      what,
    );
  }

  before(async () => {
    ws = fs.mkdtempSync(path.join(os.tmpdir(), 'torchbolt-protocol-'));
    fs.cpSync(FIXTURE, ws, { recursive: true });
    proc = spawn(PYTHON, ['-m', 'torchbolt_lsp'], { cwd: ws, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    conn = createProtocolConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
    conn.onNotification(RUN_STATE_NOTIFICATION, (p: RunStateParams) => {
      states.push(p);
    });
    conn.onNotification(RUN_EVENT_NOTIFICATION, (p: RunEventParams) => {
      events.push(p);
      const waiters = eventWaiters;
      eventWaiters = [];
      waiters.forEach((w) => w());
    });
    // Answer what VS Code answers to server -> client requests.
    // ProtocolConnection's typings omit the star handler that the underlying MessageConnection has.
    (conn as unknown as MessageConnection).onRequest((method: string) => {
      serverRequests.push(method);
      if (method === 'workspace/configuration') return [];
      if (method === 'window/showDocument') return { success: true };
      return null;
    });
    conn.listen();
    const settings = parseSettings({ get: <T>(k: string) => ({ 'run.trainer': { max_epochs: 1 } } as Record<string, unknown>)[k] as T });
    const initialize: Promise<InitializeResult> = conn.sendRequest(InitializeRequest.type, {
        processId: process.pid,
        clientInfo: { name: 'torchbolt-protocol-test', version: '0' },
        rootUri: pathToFileURL(ws).toString(),
        workspaceFolders: [{ uri: pathToFileURL(ws).toString(), name: 'ws' }],
        capabilities,
        initializationOptions: toInitializationOptions(settings, true, PYTHON),
      });
    const exited = new Promise<never>((_, reject) =>
      proc.once('exit', (code, signal) => reject(new Error(`the server exited (code ${code}, signal ${signal}) before answering initialize`))),
    );
    init = await withTimeout(Promise.race([initialize, exited]), 60000, 'initialize').catch((e: unknown) => {
      throw new Error(`${String(e)}\nserver stderr:\n${stderr.slice(-3000)}`);
    });
    await conn.sendNotification(InitializedNotification.type, {});
    await conn.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri: modelUri(), languageId: 'python', version: 1, text: fs.readFileSync(modelPath(), 'utf8') },
    });
  });

  after(async () => {
    try {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error('already exited');
      await withTimeout(conn.sendRequest(ShutdownRequest.type), 10000, 'shutdown');
      await conn.sendNotification(ExitNotification.type);
    } catch {
      /* the process is killed below either way */
    }
    const gone = proc.exitCode !== null || proc.signalCode !== null;
    const exited = gone ? Promise.resolve() : new Promise((r) => proc.once('exit', r));
    await withTimeout(exited, 10000, 'server exit').catch(() => proc.kill('SIGKILL'));
    conn.dispose();
    fs.rmSync(ws, { recursive: true, force: true });
  });

  it('initializes and advertises the contract commands and features', () => {
    const caps = init.capabilities;
    const commands = caps.executeCommandProvider?.commands ?? [];
    for (const id of Object.values(ServerCommand)) assert.ok(commands.includes(id), `executeCommandProvider lacks ${id}: ${JSON.stringify(commands)}`);
    assert.ok(caps.completionProvider, 'completionProvider');
    assert.ok(caps.codeLensProvider, 'codeLensProvider');
    assert.ok(caps.inlayHintProvider, 'inlayHintProvider');
  });

  it('completes Lightning hooks after `def ` in a LightningModule body', async () => {
    const uri = pathToFileURL(path.join(ws, 'complete.py')).toString();
    const text = 'import torchbolt as L\n\n\nclass Net(L.LightningModule):\n    def \n';
    await conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'python', version: 1, text } });
    const result = await withTimeout(
      conn.sendRequest(CompletionRequest.type, { textDocument: { uri }, position: { line: 4, character: 8 }, context: { triggerKind: 1 } }),
      20000,
      'completion',
    );
    const items = Array.isArray(result) ? result : (result?.items ?? []);
    const labels = items.map((i) => i.label);
    assert.ok(labels.includes('training_step'), `training_step not among ${labels.length} items: ${labels.slice(0, 20).join(', ')}`);
  });

  it('offers a Fit code lens above the LightningModule', async () => {
    const lenses = (await withTimeout(conn.sendRequest(CodeLensRequest.type, { textDocument: { uri: modelUri() } }), 20000, 'codeLens')) ?? [];
    const fit = lenses.find((l) => l.command?.command === ServerCommand.fit);
    assert.ok(fit, `no ${ServerCommand.fit} lens among ${JSON.stringify(lenses.map((l) => l.command))}`);
    assert.equal(fit.range.start.line, 9, 'the lens sits on `class LitModel` (line 10)');
  });

  it('runs torchbolt.fit and streams torchbolt/runEvent until finished; the status bar follows', async () => {
    const classLine = fs.readFileSync(modelPath(), 'utf8').split('\n').findIndex((l) => l.startsWith('class LitModel'));
    const response = conn.sendRequest(ExecuteCommandRequest.type, {
      command: ServerCommand.fit,
      arguments: [{ uri: modelUri(), position: { line: classLine, character: 6 }, className: 'LitModel' }],
    });
    response.catch(() => {}); // asserted below; do not let a rejection go unhandled meanwhile
    const end = await waitForEvent((e) => ['finished', 'failed'].includes(e.event.type), RUN_TIMEOUT_MS, 'a finished/failed runEvent').catch((e: unknown) => {
      throw new Error(`${String(e)}; got ${events.length} events: ${events.map((x) => x.event.type).join(',')}\nserver stderr:\n${stderr.slice(-3000)}`);
    });
    await withTimeout(response, 30000, 'the executeCommand response');

    assert.equal(end.event.type, 'finished', `run failed: ${JSON.stringify(end.event)}`);
    const runEvents = events.filter((e) => e.runId === end.runId);
    for (const e of runEvents) {
      assert.equal(e.event.v, 1, 'event schema version');
      assert.equal(typeof e.event.t, 'number');
      assert.equal(e.uri, modelUri());
      // contract: the class name; the server sends it qualified (`model.py::LitModel`), which the status bar shortens
      assert.match(e.target, /(^|::|:)LitModel$/);
    }
    const types = runEvents.map((e) => e.event.type);
    assert.equal(types[0], 'run_started', `first event: ${types.join(',')}`);
    assert.ok(types.includes('progress'), `no progress event: ${types.join(',')}`);
    const started = runEvents[0]!.event as { fn?: string; max_epochs?: number };
    assert.equal(started.fn, 'fit');
    assert.equal(started.max_epochs, 1, 'torchbolt.run.trainer {max_epochs: 1} from initializationOptions reached the run');

    // the status bar renders the server's run state (runState), sent when it changed and once at the end
    const end_ = await withTimeout(new Promise<RunStateParams>((resolve) => {
      const poll = (): void => {
        const last = states.filter((x) => x.runId === end.runId).at(-1);
        if (last && !last.active) resolve(last);
        else setTimeout(poll, 50);
      };
      poll();
    }), 30000, 'the final runState');
    const tracker = new RunTracker();
    const texts: string[] = [];
    for (const x of states.filter((y) => y.runId === end.runId)) {
      tracker.apply(x);
      texts.push(formatStatus('ready', true, tracker.current(), tracker.active().length).text);
    }
    assert.equal(end_.status, 'success');
    assert.ok(texts.some((t) => /^\$\(sync~spin\) Fit LitModel/.test(t)), `running texts: ${[...new Set(texts)].join(' | ')}`);
    assert.match(texts.at(-1)!, /^\$\(check\) Fit LitModel · done · 1 epoch · [0-9.]+ s · cpu · 32-true · train_loss [0-9.e-]+$/);
    assert.ok(!serverRequests.includes('window/workDoneProgress/create'), 'one status item: no work-done progress for VS Code');
  });

  it('shows the logged metric inline after the run (inlay hint on the self.log line)', async () => {
    const lines = fs.readFileSync(modelPath(), 'utf8').split('\n');
    const logLine = lines.findIndex((l) => l.includes('self.log("train_loss"'));
    const hints = (await withTimeout(
      conn.sendRequest(InlayHintRequest.type, { textDocument: { uri: modelUri() }, range: { start: { line: 0, character: 0 }, end: { line: lines.length, character: 0 } } }),
      20000,
      'inlayHint',
    )) ?? [];
    const texts = hints.map((h) => `${h.position.line}: ${labelText(h.label as string | { value: string }[])}`);
    assert.ok(hints.some((h) => h.position.line === logLine && /train_loss [0-9.]+/.test(labelText(h.label as string | { value: string }[]))), `hints: ${JSON.stringify(texts)}`);
  });
});
