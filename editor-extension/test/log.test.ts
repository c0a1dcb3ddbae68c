import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineBuffer, Logger } from '../src/log';
import { CRASH_ACTIONS, CRASH_LOG_LINES, crashMessage } from '../src/server';
import { mock } from './vscode-mock';

describe('crash reporting', () => {
  it('keeps the last lines of chunked stderr output', () => {
    const b = new LineBuffer(5);
    b.push('Traceback (most recent call last):\n  File "x.py", li');
    b.push('ne 3, in <module>\n\n');
    for (let i = 0; i < 6; i++) b.push(`line ${i}\r\n`);
    b.push('ImportError: boom');
    assert.deepEqual(b.tail(3), ['line 4', 'line 5', 'ImportError: boom']);
    assert.equal(b.tail(100).length, 6, 'capped at max complete lines + the partial one');
  });

  it("records what the language client writes (the server's stderr) and quotes the last 20 lines", () => {
    mock.reset();
    const log = new Logger();
    const ch = log.clientChannel();
    log.info('(re)starting the language server');
    for (let i = 1; i <= 30; i++) ch.append(`stderr ${i}\n`);
    ch.appendLine('[Error] Connection to server got closed.');
    const tail = log.tail(CRASH_LOG_LINES);
    assert.equal(tail.length, 20);
    assert.equal(tail[0], 'stderr 12');
    assert.equal(tail.at(-1), '[Error] Connection to server got closed.');
    assert.ok(mock.logLines.includes('[append] stderr 30\n'), 'and still writes to the output channel');
    const msg = crashMessage('The torchbolt language server stopped unexpectedly.', tail);
    assert.match(msg, /^The torchbolt language server stopped unexpectedly\.\n\nLast log lines:\nstderr 12\n/);
    assert.deepEqual([...CRASH_ACTIONS], ['Restart', 'Show Logs']);
  });

  it("prefers the server's own stderr over the client's messages, and forgets it on restart", () => {
    mock.reset();
    const log = new Logger();
    const ch = log.clientChannel(true);
    ch.append('Traceback (most recent call last):\n');
    ch.appendLine('[Error] Server initialization failed. write EPIPE');
    ch.append('RuntimeError: boom\n');
    log.info('(re)starting');
    assert.deepEqual(log.tail(), ['Traceback (most recent call last):', 'RuntimeError: boom']);
    log.clearTail();
    log.info('(re)starting again');
    assert.deepEqual(log.tail(), ['(re)starting again'], 'no server output yet: the general log');
    assert.match(crashMessage('x', ['y'.repeat(500)]), /y{197}\.\.\.$/);
  });
});
