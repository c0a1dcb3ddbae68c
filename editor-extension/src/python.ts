/**
 * Finding the Python that runs the server: the `torchbolt.interpreter` setting, else the Python
 * extension's active interpreter (optional; no extension dependency), else `python3` on the PATH.
 * Also checks that `torchbolt_lsp` imports there and builds the install command when it does not.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as vscode from 'vscode';

export const PYTHON_EXTENSION_ID = 'ms-python.python';

export type InterpreterSource = 'setting' | 'python-extension' | 'path';

export interface Interpreter {
  path: string;
  source: InterpreterSource;
}

/** The slice of `vscode.Extension` used here. */
export interface ExtensionLike {
  readonly isActive: boolean;
  readonly exports: unknown;
  activate(): Thenable<unknown>;
}

export interface ResolveOptions {
  setting: string;
  resource?: vscode.Uri;
  /** Restricted mode: an interpreter inside the workspace is not run (it is the workspace's code). */
  trusted: boolean;
  workspaceFolders: string[];
  getExtension: (id: string) => ExtensionLike | undefined;
  log?: (msg: string) => void;
  platform?: NodeJS.Platform;
}

export function defaultPython(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? 'python' : 'python3';
}

function isInside(file: string, folder: string): boolean {
  const rel = path.relative(folder, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

interface EnvironmentsApi {
  getActiveEnvironmentPath(resource?: vscode.Uri): { id?: string; path: string } | undefined;
  resolveEnvironment?(env: unknown): Thenable<{ executable?: { uri?: { fsPath: string } } } | undefined>;
  onDidChangeActiveEnvironmentPath?: vscode.Event<unknown>;
}

function environmentsApi(exports: unknown): EnvironmentsApi | undefined {
  const env = (exports as { environments?: unknown } | undefined)?.environments as EnvironmentsApi | undefined;
  return env && typeof env.getActiveEnvironmentPath === 'function' ? env : undefined;
}

/** The Python extension's active interpreter for `resource`, or undefined (not installed, no API, error). */
export async function pythonExtensionInterpreter(
  getExtension: (id: string) => ExtensionLike | undefined,
  resource?: vscode.Uri,
  log?: (msg: string) => void,
): Promise<string | undefined> {
  const ext = getExtension(PYTHON_EXTENSION_ID);
  if (!ext) return undefined;
  try {
    if (!ext.isActive) await ext.activate();
    const api = environmentsApi(ext.exports);
    if (!api) return undefined;
    const active = api.getActiveEnvironmentPath(resource);
    if (!active) return undefined;
    if (api.resolveEnvironment) {
      const resolved = await api.resolveEnvironment(active);
      const exe = resolved?.executable?.uri?.fsPath;
      if (exe) return exe;
    }
    return active.path || undefined;
  } catch (e) {
    log?.(`Python extension API failed: ${String(e)}`);
    return undefined;
  }
}

/** Subscribes to the Python extension's interpreter changes, when that extension and event exist. */
export async function onPythonInterpreterChange(
  getExtension: (id: string) => ExtensionLike | undefined,
  listener: () => void,
): Promise<vscode.Disposable | undefined> {
  const ext = getExtension(PYTHON_EXTENSION_ID);
  if (!ext) return undefined;
  try {
    if (!ext.isActive) await ext.activate();
    const event = environmentsApi(ext.exports)?.onDidChangeActiveEnvironmentPath;
    return event ? event(() => listener()) : undefined;
  } catch {
    return undefined;
  }
}

/** Applies the lookup order: setting, Python extension, `python3`. */
export async function resolveInterpreter(opts: ResolveOptions): Promise<Interpreter> {
  if (opts.setting.trim() !== '') return { path: opts.setting.trim(), source: 'setting' };
  const fromExt = await pythonExtensionInterpreter(opts.getExtension, opts.resource, opts.log);
  if (fromExt) {
    const inWorkspace = opts.workspaceFolders.some((f) => isInside(fromExt, f));
    if (opts.trusted || !inWorkspace) return { path: fromExt, source: 'python-extension' };
    opts.log?.(`Restricted mode: not running ${fromExt}, which lies inside the workspace; using ${defaultPython(opts.platform)}.`);
  }
  return { path: defaultPython(opts.platform), source: 'path' };
}

export interface ImportCheck {
  ok: boolean;
  /** Interpreter could not be executed at all (ENOENT, EACCES). */
  missing: boolean;
  detail: string;
}

/** Runs `<python> -c "import torchbolt_lsp"`. */
export function checkImportable(python: string, cwd: string, timeoutMs = 30000): Promise<ImportCheck> {
  return new Promise((resolve) => {
    execFile(python, ['-c', 'import torchbolt_lsp'], { cwd, timeout: timeoutMs, windowsHide: true }, (err, _stdout, stderr) => {
      if (!err) return resolve({ ok: true, missing: false, detail: '' });
      const code = (err as NodeJS.ErrnoException).code;
      const missing = code === 'ENOENT' || code === 'EACCES';
      const detail = missing ? `cannot run ${python}: ${code}` : (stderr || err.message).trim().split('\n').slice(-3).join('\n');
      resolve({ ok: false, missing, detail });
    });
  });
}

/** True when `root/pyproject.toml` is torchbolt's own (a checkout): then offer an editable install. */
export function isTorchboltCheckout(root: string | undefined): boolean {
  if (!root) return false;
  try {
    const text = fs.readFileSync(path.join(root, 'pyproject.toml'), 'utf8');
    return /^\s*name\s*=\s*["']torchbolt["']\s*$/m.test(text);
  } catch {
    return false;
  }
}

/** argv that installs torchbolt into `python`: `-e <root>` from a trusted checkout, else from the index. */
export function installCommand(python: string, checkoutRoot: string | undefined): string[] {
  return checkoutRoot ? [python, '-m', 'pip', 'install', '-e', checkoutRoot] : [python, '-m', 'pip', 'install', 'torchbolt'];
}

/** A POSIX-shell rendering of argv, for showing the user exactly what will run. */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
