import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { normalizeServerRuns, registerCommands, urlOf } from '../src/commands';
import { Logger } from '../src/log';
import { ServerCommand, UiCommand } from '../src/protocol';
import type { ServerManager } from '../src/server';
import { RunTracker } from '../src/status';
import { ensureTrustedForRun, MANAGE_TRUST, RUNS_DISABLED_MESSAGE } from '../src/trust';
import { mock, Uri } from './vscode-mock';

function fakeServer() {
  const sent: { command: string; args: unknown[] }[] = [];
  const server = {
    status: { runs: new RunTracker() },
    sent,
    restarts: [] as string[],
    executeCommand: async (command: string, args: unknown[]) => {
      sent.push({ command, args });
      return { runId: 'r1' };
    },
    restartNow: async (reason: string) => void server.restarts.push(reason),
  };
  return server;
}

function register() {
  const server = fakeServer();
  const context = { subscriptions: [] as { dispose(): void }[], extensionPath: '/ext' };
  registerCommands(context as never, server as unknown as ServerManager, new Logger());
  return server;
}

const editorAt = (path: string, line: number, character: number) => ({
  document: { uri: Uri.file(path), languageId: 'python', isDirty: false },
  selection: { active: { line, character } },
});

describe('workspace trust', () => {
  beforeEach(() => mock.reset());

  it('lets runs through in a trusted workspace', async () => {
    mock.isTrusted = true;
    assert.equal(await ensureTrustedForRun(), true);
    assert.deepEqual(mock.messages, []);
  });

  it('explains that runs are disabled in an untrusted workspace, offering to manage trust', async () => {
    mock.isTrusted = false;
    mock.messageAnswer = MANAGE_TRUST;
    assert.equal(await ensureTrustedForRun(), false);
    assert.equal(mock.messages.length, 1);
    assert.equal(mock.messages[0]!.message, RUNS_DISABLED_MESSAGE);
    assert.deepEqual(mock.messages[0]!.items, [MANAGE_TRUST]);
    assert.ok(mock.executed.some((c) => c.command === 'workbench.trust.manage'));
  });

  it('Fit/Validate/Test send nothing to the server while untrusted', async () => {
    const server = register();
    mock.isTrusted = false;
    mock.activeTextEditor = editorAt('/ws/model.py', 3, 4);
    for (const id of [UiCommand.fit, UiCommand.validate, UiCommand.test]) await mock.registered.get(id)!();
    assert.deepEqual(server.sent, []);
    assert.equal(mock.messages.filter((m) => m.message === RUNS_DISABLED_MESSAGE).length, 3);
  });

  it('trusted: the UI command sends the server command with the editor URI and cursor', async () => {
    const server = register();
    mock.activeTextEditor = editorAt('/ws/model.py', 12, 8);
    const result = await mock.registered.get(UiCommand.fit)!();
    assert.deepEqual(result, { runId: 'r1' });
    assert.deepEqual(server.sent, [{ command: ServerCommand.fit, args: [{ uri: 'file:///ws/model.py', position: { line: 12, character: 8 } }] }]);
    await mock.registered.get(UiCommand.test)!({ uri: 'file:///ws/other.py', className: 'Net', position: { line: 1, character: 0 } });
    assert.deepEqual(server.sent[1], { command: ServerCommand.test, args: [{ uri: 'file:///ws/other.py', position: { line: 1, character: 0 }, className: 'Net' }] });
  });

  it("never registers the server's own command ids (vscode-languageclient does)", () => {
    register();
    for (const id of Object.values(ServerCommand)) assert.equal(mock.registered.has(id), false, id);
    assert.deepEqual([...mock.registered.keys()].sort(), Object.values(UiCommand).sort());
  });

  it('Stop targets the active run, or the active file when no run is known', async () => {
    const server = register();
    mock.activeTextEditor = editorAt('/ws/model.py', 0, 0);
    await mock.registered.get(UiCommand.stop)!();
    assert.deepEqual(server.sent.pop(), { command: ServerCommand.stop, args: [{ uri: 'file:///ws/model.py' }] });
    server.status.runs.apply({ runId: 'r7', uri: 'file:///ws/model.py', target: '/ws/model.py::M', label: 'M', fn: 'fit', status: 'running', active: true });
    await mock.registered.get(UiCommand.stop)!();
    assert.deepEqual(server.sent.pop(), { command: ServerCommand.stop, args: [{ runId: 'r7' }] });
  });

  it('granting trust (and changing settings) schedules the one restart path', async () => {
    const { ServerManager } = await import('../src/server');
    const { StatusBar } = await import('../src/status');
    const log = new Logger();
    const mgr = new ServerManager({ subscriptions: [], extensionPath: '/ext' } as never, log, new StatusBar(new RunTracker()));
    const scheduled: string[] = [];
    mgr.scheduleRestart = (reason: string) => void scheduled.push(reason);
    mock.onDidGrantWorkspaceTrust.fire();
    mock.onDidChangeConfiguration.fire({ affectsConfiguration: (s) => s === 'torchbolt' });
    mock.onDidChangeConfiguration.fire({ affectsConfiguration: (s) => s === 'editor' });
    assert.deepEqual(scheduled, ['workspace trusted', 'settings changed']);
    await mgr.dispose();
  });

  it('does not start the server before a Python file opens', async () => {
    const { ServerManager } = await import('../src/server');
    const { StatusBar } = await import('../src/status');
    const mgr = new ServerManager({ subscriptions: [], extensionPath: '/ext' } as never, new Logger(), new StatusBar(new RunTracker()));
    let starts = 0;
    mgr.ensureStarted = async () => void starts++;
    mgr.startWhenPythonOpens();
    mock.onDidOpenTextDocument.fire({ languageId: 'json' });
    assert.equal(starts, 0);
    mock.onDidOpenTextDocument.fire({ languageId: 'python' });
    mock.onDidOpenTextDocument.fire({ languageId: 'python' });
    assert.equal(starts, 1);
    await mgr.dispose();
  });

  it("reads the server's runs list and TensorBoard answers", () => {
    assert.deepEqual(normalizeServerRuns({ runs: [{ runId: 'a', target: 'm.py::M', fn: 'fit', status: 'success', logDir: '/l', comparison: 'loss 0.3 → 0.2 (better)' }, { nope: 1 }] }), [
      { runId: 'a', target: 'M', status: 'success', uri: undefined, fn: 'fit', detail: 'loss 0.3 → 0.2 (better) · /l' },
    ]);
    assert.deepEqual(normalizeServerRuns([{ run_id: 'b', label: 'Fit M' }]).map((r) => [r.runId, r.target]), [['b', 'Fit M']]);
    assert.deepEqual(normalizeServerRuns(null), []);
    assert.equal(urlOf({ url: 'http://127.0.0.1:6006/', logdir: '/x' }), 'http://127.0.0.1:6006/');
    assert.equal(urlOf('http://127.0.0.1:6006/'), 'http://127.0.0.1:6006/');
    assert.equal(urlOf({ started: true }), undefined);
  });
});
