/** Reading `torchbolt.*` settings and turning them into the server's initializationOptions. */
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { InitializationOptions } from './protocol';

export const SECTION = 'torchbolt';

export type TraceSetting = 'off' | 'messages' | 'verbose';

export interface TorchboltSettings {
  /** Raw `torchbolt.interpreter` after variable expansion; '' when unset. */
  interpreter: string;
  trainer: Record<string, unknown>;
  lintSelect: string[];
  lintIgnore: string[];
  inlayHints: boolean;
  trace: TraceSetting;
}

/** The part of `vscode.WorkspaceConfiguration` this module reads (keeps tests small). */
export interface ConfigReader {
  get<T>(key: string): T | undefined;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.trim() !== '').map((x) => x.trim()) : [];
}

function plainObject(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...(v as Record<string, unknown>) } : {};
}

/** Expands `${workspaceFolder}`, `${userHome}` and a leading `~` in a path setting. */
export function expandPath(value: string, workspaceFolder: string | undefined, home: string = os.homedir()): string {
  let out = value.trim();
  if (out === '') return out;
  if (out === '~' || out.startsWith('~/')) out = path.join(home, out.slice(1));
  out = out.replace(/\$\{userHome\}/g, home);
  if (workspaceFolder !== undefined) out = out.replace(/\$\{workspaceFolder\}/g, workspaceFolder);
  return out;
}

/** Reads the settings from a configuration object; unknown or mistyped values fall back to defaults. */
export function parseSettings(config: ConfigReader, workspaceFolder?: string): TorchboltSettings {
  const trace = config.get<string>('trace.server');
  const interpreter = config.get<unknown>('interpreter');
  return {
    interpreter: typeof interpreter === 'string' ? expandPath(interpreter, workspaceFolder) : '',
    trainer: plainObject(config.get<unknown>('run.trainer')),
    lintSelect: strings(config.get<unknown>('lint.select')),
    lintIgnore: strings(config.get<unknown>('lint.ignore')),
    inlayHints: config.get<unknown>('inlayHints.enable') !== false,
    trace: trace === 'messages' || trace === 'verbose' ? trace : 'off',
  };
}

/** The first workspace folder: one server per window, settings read at its scope. */
export function primaryFolder(): vscode.WorkspaceFolder | undefined {
  return vscode.workspace.workspaceFolders?.[0];
}

export function readSettings(): TorchboltSettings {
  const folder = primaryFolder();
  return parseSettings(vscode.workspace.getConfiguration(SECTION, folder?.uri), folder?.uri.fsPath);
}

/** Maps settings + trust + the resolved interpreter onto the contract's initializationOptions. */
export function toInitializationOptions(
  settings: TorchboltSettings,
  trusted: boolean,
  interpreter: string | null,
): InitializationOptions {
  return {
    trusted,
    runStatusItem: true,
    messageRequestToasts: true,
    settings: {
      lint: { select: [...settings.lintSelect], ignore: [...settings.lintIgnore] },
      inlayHints: { enable: settings.inlayHints },
      run: { interpreter, trainer: { ...settings.trainer } },
    },
  };
}

/** Whether a configuration change should restart the server (every `torchbolt.*` change does). */
export function affectsServer(e: { affectsConfiguration(section: string): boolean }): boolean {
  return e.affectsConfiguration(SECTION);
}
