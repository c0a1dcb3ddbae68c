/** Entry points only; the work lives in server.ts, commands.ts, status.ts and friends. */
import type * as vscode from 'vscode';
import { registerCommands } from './commands';
import { Logger } from './log';
import { ServerManager } from './server';
import { RunTracker, StatusBar } from './status';

let manager: ServerManager | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = new Logger('torchbolt');
  const status = new StatusBar(new RunTracker());
  manager = new ServerManager(context, log, status);
  context.subscriptions.push(log, status);
  registerCommands(context, manager, log);
  manager.startWhenPythonOpens();
}

export async function deactivate(): Promise<void> {
  await manager?.dispose();
  manager = undefined;
}
