/**
 * The `torchbolt` log output channel (a LogOutputChannel, so VS Code writes it to its log folder) plus
 * a buffer of the last lines, which the crash message quotes. The language client writes through a
 * tee so that the server's stderr lands in both.
 */
import * as vscode from 'vscode';

/** Keeps the last `max` complete lines of a stream of text chunks. */
export class LineBuffer {
  private readonly lines: string[] = [];
  private partial = '';

  constructor(private readonly max = 200) {}

  push(text: string): void {
    const parts = (this.partial + text).split(/\r?\n/);
    this.partial = parts.pop() ?? '';
    for (const l of parts) this.add(l);
  }

  private add(line: string): void {
    if (line.trim() === '') return;
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
  }

  tail(n: number): string[] {
    const all = this.partial.trim() ? [...this.lines, this.partial] : this.lines;
    return all.slice(-n);
  }

  clear(): void {
    this.lines.length = 0;
    this.partial = '';
  }
}

export class Logger implements vscode.Disposable {
  readonly channel: vscode.LogOutputChannel;
  readonly buffer = new LineBuffer();
  /** Only what the server process wrote to stderr: the most telling part of a crash report. */
  readonly serverOutput = new LineBuffer();

  constructor(name = 'torchbolt') {
    this.channel = vscode.window.createOutputChannel(name, { log: true });
  }

  info(msg: string): void {
    this.buffer.push(msg + '\n');
    this.channel.info(msg);
  }

  warn(msg: string): void {
    this.buffer.push(msg + '\n');
    this.channel.warn(msg);
  }

  error(msg: string): void {
    this.buffer.push(msg + '\n');
    this.channel.error(msg);
  }

  /** The last `n` lines of the server's stderr, or of the whole log when the server wrote nothing. */
  tail(n = 20): string[] {
    const server = this.serverOutput.tail(n);
    return server.length ? server : this.buffer.tail(n);
  }

  /** Forget the previous server's lines (called on every restart). */
  clearTail(): void {
    this.buffer.clear();
    this.serverOutput.clear();
  }

  show(): void {
    this.channel.show(true);
  }

  /**
   * An OutputChannel for the LanguageClient: writes to the log channel and records the lines. With
   * `serverStderr`, `append()` calls (which vscode-languageclient makes only for the server's stderr
   * on its outputChannel) are also kept apart for crash reports.
   */
  clientChannel(serverStderr = false): vscode.OutputChannel {
    const ch = this.channel;
    const buf = this.buffer;
    const stderr = serverStderr ? this.serverOutput : undefined;
    return {
      name: ch.name,
      append(value: string) {
        buf.push(value);
        stderr?.push(value);
        ch.append(value);
      },
      appendLine(value: string) {
        buf.push(value + '\n');
        ch.appendLine(value);
      },
      replace(value: string) {
        ch.replace(value);
      },
      clear() {
        ch.clear();
      },
      show(a?: unknown, b?: boolean) {
        ch.show(typeof a === 'boolean' ? a : b);
      },
      hide() {
        ch.hide();
      },
      dispose() {
        /* the Logger owns the channel */
      },
    };
  }

  dispose(): void {
    this.channel.dispose();
  }
}
