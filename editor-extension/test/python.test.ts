import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  checkImportable,
  type ExtensionLike,
  installCommand,
  isTorchboltCheckout,
  PYTHON_EXTENSION_ID,
  resolveInterpreter,
  shellQuote,
} from '../src/python';

function pythonExt(exports: unknown, active = true): ExtensionLike & { activations: number } {
  const ext = {
    isActive: active,
    exports,
    activations: 0,
    activate() {
      ext.activations++;
      ext.isActive = true;
      return Promise.resolve(exports);
    },
  };
  return ext;
}

function envApi(activePath: string, resolvedExe?: string) {
  return {
    environments: {
      getActiveEnvironmentPath: () => ({ id: 'x', path: activePath }),
      resolveEnvironment: () => Promise.resolve(resolvedExe ? { executable: { uri: { fsPath: resolvedExe } } } : undefined),
    },
  };
}

const only = (ext: ExtensionLike | undefined) => (id: string) => (id === PYTHON_EXTENSION_ID ? ext : undefined);

describe('interpreter resolution', () => {
  it('uses the torchbolt.interpreter setting first', async () => {
    const ext = pythonExt(envApi('/envs/a/bin/python', '/envs/a/bin/python'));
    const r = await resolveInterpreter({ setting: ' /opt/py/bin/python ', trusted: true, workspaceFolders: [], getExtension: only(ext) });
    assert.deepEqual(r, { path: '/opt/py/bin/python', source: 'setting' });
    assert.equal(ext.activations, 0, 'the Python extension is not touched when the setting is set');
  });

  it("then the Python extension's resolved active interpreter (activating it if needed)", async () => {
    const ext = pythonExt(envApi('/envs/a', '/envs/a/bin/python3.12'), false);
    const r = await resolveInterpreter({ setting: '', trusted: true, workspaceFolders: [], getExtension: only(ext) });
    assert.deepEqual(r, { path: '/envs/a/bin/python3.12', source: 'python-extension' });
    assert.equal(ext.activations, 1);
  });

  it('falls back to the active environment path when resolveEnvironment gives nothing', async () => {
    const ext = pythonExt(envApi('/envs/b/bin/python'));
    const r = await resolveInterpreter({ setting: '', trusted: true, workspaceFolders: [], getExtension: only(ext) });
    assert.deepEqual(r, { path: '/envs/b/bin/python', source: 'python-extension' });
  });

  it('then python3 on the PATH: no extension, an API without environments, or an API that throws', async () => {
    const throwing = pythonExt({
      environments: {
        getActiveEnvironmentPath: () => {
          throw new Error('boom');
        },
      },
    });
    const logs: string[] = [];
    for (const ext of [undefined, pythonExt({}), pythonExt(undefined), throwing]) {
      const r = await resolveInterpreter({ setting: '', trusted: true, workspaceFolders: [], getExtension: only(ext), log: (m) => logs.push(m), platform: 'linux' });
      assert.deepEqual(r, { path: 'python3', source: 'path' });
    }
    assert.ok(logs.some((l) => l.includes('boom')), 'an API failure is logged');
  });

  it('uses "python" on Windows', async () => {
    const r = await resolveInterpreter({ setting: '', trusted: true, workspaceFolders: [], getExtension: only(undefined), platform: 'win32' });
    assert.equal(r.path, 'python');
  });

  it('in restricted mode does not run an interpreter that lives inside the workspace', async () => {
    const ext = pythonExt(envApi('/ws/.venv/bin/python', '/ws/.venv/bin/python'));
    const untrusted = await resolveInterpreter({ setting: '', trusted: false, workspaceFolders: ['/ws'], getExtension: only(ext), platform: 'linux' });
    assert.deepEqual(untrusted, { path: 'python3', source: 'path' });
    const trusted = await resolveInterpreter({ setting: '', trusted: true, workspaceFolders: ['/ws'], getExtension: only(ext) });
    assert.equal(trusted.path, '/ws/.venv/bin/python');
    const outside = pythonExt(envApi('/usr/bin/python3.11', '/usr/bin/python3.11'));
    const r = await resolveInterpreter({ setting: '', trusted: false, workspaceFolders: ['/ws'], getExtension: only(outside) });
    assert.equal(r.path, '/usr/bin/python3.11');
  });
});

describe('importability check and install command', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tb-python-'));
  const script = (name: string, body: string) => {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return p;
  };

  it('reports ok when the import succeeds', async () => {
    const good = script('good-python', 'test "$1" = -c && test "$2" = "import torchbolt_lsp" && exit 0; exit 3');
    assert.deepEqual(await checkImportable(good, tmp), { ok: true, missing: false, detail: '' });
  });

  it("reports the interpreter's error when the import fails", async () => {
    const bad = script('bad-python', `echo "ModuleNotFoundError: No module named 'torchbolt_lsp'" >&2; exit 1`);
    const r = await checkImportable(bad, tmp);
    assert.equal(r.ok, false);
    assert.equal(r.missing, false);
    assert.match(r.detail, /No module named 'torchbolt_lsp'/);
  });

  it('reports a missing interpreter separately', async () => {
    const r = await checkImportable(path.join(tmp, 'no-such-python'), tmp);
    assert.equal(r.ok, false);
    assert.equal(r.missing, true);
  });

  it('installs from the index, or editable from a torchbolt checkout', () => {
    assert.deepEqual(installCommand('/py', undefined), ['/py', '-m', 'pip', 'install', 'torchbolt']);
    assert.deepEqual(installCommand('/py', '/src/torchbolt'), ['/py', '-m', 'pip', 'install', '-e', '/src/torchbolt']);
    const checkout = path.join(tmp, 'checkout');
    fs.mkdirSync(checkout);
    assert.equal(isTorchboltCheckout(checkout), false);
    fs.writeFileSync(path.join(checkout, 'pyproject.toml'), '[project]\nname = "someone-else"\n');
    assert.equal(isTorchboltCheckout(checkout), false);
    fs.writeFileSync(path.join(checkout, 'pyproject.toml'), '[project]\nname = "torchbolt"\nversion = "0.1.0"\n');
    assert.equal(isTorchboltCheckout(checkout), true);
  });

  it('shows the command the way a shell would run it', () => {
    assert.equal(shellQuote(['/a b/python', '-m', 'pip', 'install', 'torchbolt']), `'/a b/python' -m pip install torchbolt`);
  });
});
