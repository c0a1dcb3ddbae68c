/** Loaded with `node --require`: makes `require('vscode')` return the mock for every test file. */
import Module = require('node:module');
import * as mockModule from './vscode-mock';

type Load = (request: string, parent: unknown, isMain: boolean) => unknown;
const M = Module as unknown as { _load: Load };
const original = M._load;

// vscode-languageclient touches many vscode classes at load time (extends, instanceof); any name the
// mock does not define becomes an empty class so the library loads. Tests only use the mock's API.
const fallback = new Map<string, unknown>();
const proxied = new Proxy(mockModule as Record<string, unknown>, {
  get(target, prop) {
    if (typeof prop !== 'string' || prop in target) return (target as Record<string | symbol, unknown>)[prop];
    if (prop === 'then' || prop === '__esModule') return undefined;
    if (!fallback.has(prop)) fallback.set(prop, class {});
    return fallback.get(prop);
  },
});

M._load = function (request: string, parent: unknown, isMain: boolean) {
  if (request === 'vscode') return proxied;
  return original.call(this, request, parent, isMain);
};
