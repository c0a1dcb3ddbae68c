/**
 * A small stand-in for the `vscode` module, enough for the extension's modules to load and run under
 * node:test. Tests reach the recorded calls and the settable state through `mock`.
 */
type Listener<T> = (e: T) => unknown;

export class Disposable {
  constructor(private readonly fn: () => void = () => {}) {}
  static from(...ds: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => ds.forEach((d) => d.dispose()));
  }
  dispose(): void {
    this.fn();
  }
}

export class EventEmitter<T> {
  private listeners: Listener<T>[] = [];
  event = (l: Listener<T>): Disposable => {
    this.listeners.push(l);
    return new Disposable(() => {
      this.listeners = this.listeners.filter((x) => x !== l);
    });
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
  dispose(): void {
    this.listeners = [];
  }
}

export class Uri {
  private constructor(readonly scheme: string, readonly path: string) {}
  static file(p: string): Uri {
    return new Uri('file', p);
  }
  static parse(s: string): Uri {
    const m = /^([a-z][\w+.-]*):(?:\/\/)?(.*)$/i.exec(s);
    return m ? new Uri(m[1]!, m[1] === 'file' ? m[2]! : s) : new Uri('file', s);
  }
  get fsPath(): string {
    return this.path;
  }
  toString(): string {
    return this.scheme === 'file' ? `file://${this.path}` : this.path;
  }
}

export class Position {
  constructor(readonly line: number, readonly character: number) {}
}
export class Selection {
  constructor(readonly anchor: Position, readonly active: Position) {}
}
export class ThemeColor {
  constructor(readonly id: string) {}
}
export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}

export interface MockStatusBarItem {
  id: string;
  text: string;
  tooltip: unknown;
  command: unknown;
  name?: string;
  backgroundColor: unknown;
  visible: boolean;
  show(): void;
  hide(): void;
  dispose(): void;
}

export interface MessageCall {
  kind: 'info' | 'warning' | 'error';
  message: string;
  items: string[];
}

/** State and recordings the tests read and set. */
export const mock = {
  config: {} as Record<string, unknown>,
  isTrusted: true,
  workspaceFolders: [] as { uri: Uri; name: string; index: number }[],
  extensions: {} as Record<string, unknown>,
  messages: [] as MessageCall[],
  /** What the next show*Message resolves to (undefined = dismissed). */
  messageAnswer: undefined as string | undefined,
  executed: [] as { command: string; args: unknown[] }[],
  registered: new Map<string, (...args: unknown[]) => unknown>(),
  statusItems: [] as MockStatusBarItem[],
  logLines: [] as string[],
  activeTextEditor: undefined as unknown,
  textDocuments: [] as unknown[],
  onDidChangeConfiguration: new EventEmitter<{ affectsConfiguration(s: string): boolean }>(),
  onDidGrantWorkspaceTrust: new EventEmitter<void>(),
  onDidOpenTextDocument: new EventEmitter<unknown>(),
  reset(): void {
    this.config = {};
    this.isTrusted = true;
    this.workspaceFolders = [];
    this.extensions = {};
    this.messages = [];
    this.messageAnswer = undefined;
    this.executed = [];
    this.registered.clear();
    this.statusItems = [];
    this.logLines = [];
    this.activeTextEditor = undefined;
    this.textDocuments = [];
  },
};

function message(kind: MessageCall['kind']) {
  return (msg: string, ...items: unknown[]) => {
    mock.messages.push({ kind, message: msg, items: items.filter((i): i is string => typeof i === 'string') });
    return Promise.resolve(mock.messageAnswer);
  };
}

function outputChannel(name: string) {
  const line = (level: string) => (msg: string) => {
    mock.logLines.push(`[${level}] ${msg}`);
  };
  return {
    name,
    append: line('append'),
    appendLine: line('info'),
    trace: line('trace'),
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
    replace() {},
    clear() {},
    show() {},
    hide() {},
    dispose() {},
    logLevel: 3,
    onDidChangeLogLevel: new EventEmitter<number>().event,
  };
}

export const window = {
  get activeTextEditor() {
    return mock.activeTextEditor;
  },
  createOutputChannel: (name: string) => outputChannel(name),
  createStatusBarItem(id: string): MockStatusBarItem {
    const item: MockStatusBarItem = {
      id,
      text: '',
      tooltip: undefined,
      command: undefined,
      backgroundColor: undefined,
      visible: false,
      show() {
        item.visible = true;
      },
      hide() {
        item.visible = false;
      },
      dispose() {},
    };
    mock.statusItems.push(item);
    return item;
  },
  showInformationMessage: message('info'),
  showWarningMessage: message('warning'),
  showErrorMessage: message('error'),
  showQuickPick: () => Promise.resolve(undefined),
  setStatusBarMessage: () => new Disposable(),
  createTerminal: () => ({ show() {}, dispose() {} }),
  onDidCloseTerminal: new EventEmitter<unknown>().event,
};

export const workspace = {
  get isTrusted() {
    return mock.isTrusted;
  },
  get workspaceFolders() {
    return mock.workspaceFolders.length ? mock.workspaceFolders : undefined;
  },
  get textDocuments() {
    return mock.textDocuments;
  },
  getConfiguration(section?: string) {
    const prefix = section ? `${section}.` : '';
    return {
      get<T>(key: string, dflt?: T): T | undefined {
        const v = mock.config[prefix + key];
        return (v === undefined ? dflt : v) as T | undefined;
      },
      has: (key: string) => prefix + key in mock.config,
      update: () => Promise.resolve(),
      inspect: () => undefined,
    };
  },
  onDidChangeConfiguration: mock.onDidChangeConfiguration.event,
  onDidGrantWorkspaceTrust: mock.onDidGrantWorkspaceTrust.event,
  onDidOpenTextDocument: mock.onDidOpenTextDocument.event,
  onDidCloseTextDocument: new EventEmitter<unknown>().event,
  onDidChangeTextDocument: new EventEmitter<unknown>().event,
  onDidSaveTextDocument: new EventEmitter<unknown>().event,
  onDidChangeWorkspaceFolders: new EventEmitter<unknown>().event,
};

export const commands = {
  registerCommand(id: string, fn: (...args: unknown[]) => unknown): Disposable {
    mock.registered.set(id, fn);
    return new Disposable(() => mock.registered.delete(id));
  },
  executeCommand(command: string, ...args: unknown[]): Promise<unknown> {
    mock.executed.push({ command, args });
    const fn = mock.registered.get(command);
    return Promise.resolve(fn ? fn(...args) : undefined);
  },
};

export const extensions = {
  getExtension(id: string) {
    return mock.extensions[id];
  },
};

export const env = {
  openExternal: () => Promise.resolve(true),
};

export const languages = {};
