import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { affectsServer, expandPath, parseSettings, toInitializationOptions } from '../src/settings';

const reader = (values: Record<string, unknown>) => ({ get: <T>(k: string) => values[k] as T | undefined });

describe('settings', () => {
  it('has the documented defaults', () => {
    assert.deepEqual(parseSettings(reader({})), {
      interpreter: '',
      trainer: {},
      lintSelect: [],
      lintIgnore: [],
      inlayHints: true,
      trace: 'off',
    });
  });

  it('drops mistyped values instead of sending them to the server', () => {
    const s = parseSettings(reader({ interpreter: 42, 'run.trainer': ['x'], 'lint.select': 'TB', 'lint.ignore': ['TB001', 7, ' '], 'inlayHints.enable': 'no', 'trace.server': 'loud' }));
    assert.deepEqual(s, { interpreter: '', trainer: {}, lintSelect: [], lintIgnore: ['TB001'], inlayHints: true, trace: 'off' });
  });

  it('expands ${workspaceFolder}, ${userHome} and ~ in the interpreter path', () => {
    assert.equal(expandPath('${workspaceFolder}/.venv/bin/python', '/ws', '/home/u'), '/ws/.venv/bin/python');
    assert.equal(expandPath('~/venv/bin/python', undefined, '/home/u'), '/home/u/venv/bin/python');
    assert.equal(expandPath('${userHome}/py', undefined, '/home/u'), '/home/u/py');
    assert.equal(parseSettings(reader({ interpreter: '${workspaceFolder}/py' }), '/w').interpreter, '/w/py');
  });

  it('maps onto the initializationOptions of the server contract', () => {
    const s = parseSettings(reader({
      'run.trainer': { max_epochs: 1, accelerator: 'cpu' },
      'lint.select': ['TB0'],
      'lint.ignore': ['TB003'],
      'inlayHints.enable': false,
      'trace.server': 'verbose',
    }));
    assert.deepEqual(toInitializationOptions(s, true, '/venv/bin/python'), {
      trusted: true,
      runStatusItem: true,
      messageRequestToasts: true,
      settings: {
        lint: { select: ['TB0'], ignore: ['TB003'] },
        inlayHints: { enable: false },
        run: { interpreter: '/venv/bin/python', trainer: { max_epochs: 1, accelerator: 'cpu' } },
      },
    });
    const untrusted = toInitializationOptions(parseSettings(reader({})), false, null);
    assert.equal(untrusted.trusted, false);
    assert.equal(untrusted.settings.run.interpreter, null);
    assert.deepEqual(JSON.parse(JSON.stringify(untrusted)), untrusted, 'JSON round-trips unchanged');
  });

  it('restarts on any torchbolt.* change and nothing else', () => {
    const ev = (sections: string[]) => ({ affectsConfiguration: (s: string) => sections.some((x) => x === s || x.startsWith(`${s}.`)) });
    assert.equal(affectsServer(ev(['torchbolt.lint.select'])), true);
    assert.equal(affectsServer(ev(['python.defaultInterpreterPath'])), false);
  });
});
