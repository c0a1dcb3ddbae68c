/**
 * Workspace trust. Untrusted: the server starts with `trusted: false` (static features only) and the
 * Fit/Validate/Test commands explain why they do nothing. Granting trust restarts the server trusted.
 */
import * as vscode from 'vscode';

export const RUNS_DISABLED_MESSAGE =
  'torchbolt: Fit, Validate and Test run this workspace\u2019s code, so they are disabled until you trust the workspace. ' +
  'Completion, hovers, diagnostics and quick fixes keep working.';

export const MANAGE_TRUST = 'Manage Workspace Trust';

export function isTrusted(): boolean {
  return vscode.workspace.isTrusted;
}

/** True when runs may start; otherwise tells the user why not (and how to trust) and returns false. */
export async function ensureTrustedForRun(): Promise<boolean> {
  if (isTrusted()) return true;
  const pick = await vscode.window.showWarningMessage(RUNS_DISABLED_MESSAGE, MANAGE_TRUST);
  if (pick === MANAGE_TRUST) await vscode.commands.executeCommand('workbench.trust.manage');
  return false;
}

/** Calls `listener` once trust is granted (VS Code only ever grants; revoking reloads the window). */
export function onTrustGranted(listener: () => void): vscode.Disposable {
  return vscode.workspace.onDidGrantWorkspaceTrust(listener);
}
