'use strict';
// Wisp's Node.js launcher: one sandboxed instance (a "stem cell").
//
// A child of the Python zygote confines itself (session, cgroup, rlimits, uid) and
// then execs `node -e <this file>` with an empty environment: this file never runs
// with the host's secrets. It speaks Wisp's worker protocol on fd 3 (a 4-byte
// big-endian length, then JSON): `init` once with the code, then any number of
// `run`. After each of them it writes the end-of-activation marker on stdout and
// stderr, then replies. Standard library only.

const fs = require('fs');
const net = require('net');
const path = require('path');
const url = require('url');
const vm = require('vm');
const Module = require('module');

const MARKER = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n';
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const ESM_HINTS = [
  'Cannot use import statement outside a module',
  "Unexpected token 'export'",
  'await is only valid in async functions and the top level bodies of modules',
];

let handler = null; // the user's function, once init succeeded
let withContext = false; // main(event, context) rather than main(args)
let current = null; // {fail(err)} while an activation runs

// -- framing ------------------------------------------------------------------------

const control = new net.Socket({ fd: 3, readable: true, writable: true });
let pending = Buffer.alloc(0);
let queue = warmUp(); // messages wait for it: they are served in order after it

control.on('data', (chunk) => {
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  for (;;) {
    const [message, rest] = unframe(pending);
    if (message === null) break;
    pending = rest;
    queue = queue.then(() => serve(message));
  }
});
control.on('end', () => process.exit(0));
control.on('error', () => process.exit(0));

// [the first whole message in buffer, or null; what follows it]
function unframe(buffer) {
  if (buffer.length < 4) return [null, buffer];
  const size = buffer.readUInt32BE(0);
  if (buffer.length < 4 + size) return [null, buffer];
  return [JSON.parse(buffer.subarray(4, 4 + size).toString('utf8')), buffer.subarray(4 + size)];
}

function frame(body) {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(Buffer.byteLength(body));
  return Buffer.concat([head, Buffer.from(body)]);
}

function send(body) {
  control.write(frame(body));
}

async function serve(message) {
  const reply = message.op === 'init' ? await init(message) : await run(message);
  // Pipes are synchronous on Linux: everything the function printed is out before
  // the marker, and the marker before the reply.
  process.stdout.write(MARKER);
  process.stderr.write(MARKER);
  send(typeof reply === 'string' ? reply : JSON.stringify(reply));
}

// A function's stray async failure (a timer that throws after it returned) is the
// user's problem, not the instance's: log it, and fail the activation if one runs.
process.on('uncaughtException', (err) => {
  logError(err);
  if (current) current.fail(err);
});
process.on('unhandledRejection', (err) => {
  logError(err);
  if (current) current.fail(err);
});

// A stem cell waits for code anyway: take the first-use costs of a cold start now
// (V8 compiling this file's framing, init and run paths, the vm and module machinery,
// the ES module loader, creating the stdout and stderr streams — ~1 ms on the first
// write) so that `init` only loads the user's code. Best effort: a failure here only
// costs speed. Nothing is sent: the empty writes put no byte on any pipe or socket.
async function warmUp() {
  try {
    unframe(frame('{"op":"init","main":"main"}'));
    const exported = await loadSource('function main(a) { return {a}; }\n', 'main');
    result(await Promise.resolve(pick(exported, 'main')({ x: 1 })));
    new Context({}).getRemainingTimeInMillis();
    const esm = Buffer.from('export function main() { return {}; }\n').toString('base64');
    pick(await import(`data:text/javascript;base64,${esm}`), 'main');
    process.stdout.write('');
    process.stderr.write('');
    control.write(Buffer.alloc(0));
  } catch (err) {
    // nothing to report: the instance works without it
  }
}

// -- init ---------------------------------------------------------------------------

async function init(message) {
  const env = message.env || {};
  for (const key of Object.keys(process.env)) delete process.env[key];
  for (const [key, value] of Object.entries(env)) process.env[key] = String(value);
  const entry = message.main || 'main';
  let exported;
  try {
    exported = message.bundle
      ? await loadBundle(message.bundle)
      : await loadSource(message.code || '', entry);
  } catch (err) {
    logError(err);
    if (err instanceof SyntaxError) {
      return { ok: false, error: `syntax error in the code: ${err.message}${lineOf(err)}` };
    }
    return { ok: false, error: `the code failed to load: ${describe(err)}` };
  }
  handler = pick(exported, entry);
  if (typeof handler !== 'function') {
    return { ok: false, error: `the code exports no function named '${entry}'` };
  }
  withContext = handler.length >= 2;
  return '{"ok":true}';
}

// A single file: CommonJS first (OpenWhisk's classic `function main`), ES module
// when the source uses import/export. Either way the named function is also taken
// when it is declared but not exported.
async function loadSource(code, entry) {
  const probe = IDENTIFIER.test(entry)
    ? `\n;module.exports.__wisp_main = typeof ${entry} === 'function' ? ${entry} : undefined;\n`
    : '\n';
  // compileFunction, not Module._compile: the latter may itself decide the code is
  // an ES module (newer Node detects module syntax) and run it in the wrong scope.
  const dir = process.cwd();
  const filename = path.join(dir, 'index.js');
  let compiled = null;
  try {
    compiled = vm.compileFunction(code + probe, ['exports', 'require', 'module', '__filename', '__dirname'], { filename });
  } catch (err) {
    if (!(err instanceof SyntaxError) || !ESM_HINTS.some((hint) => err.message.includes(hint))) {
      throw err;
    }
  }
  if (compiled !== null) {
    const mod = new Module(filename, null);
    mod.filename = filename;
    mod.paths = Module._nodeModulePaths(dir);
    compiled.call(mod.exports, mod.exports, Module.createRequire(filename), mod, filename, dir);
    return mod.exports;
  }
  const esmProbe = IDENTIFIER.test(entry)
    ? `\nexport const __wisp_main = typeof ${entry} === 'function' ? ${entry} : undefined;\n`
    : '\n';
  const source = Buffer.from(code + esmProbe).toString('base64');
  return import(`data:text/javascript;base64,${source}`);
}

// A zip: package.json's `main` (default index.js); ES module for .mjs or "type": "module".
async function loadBundle(dir) {
  process.chdir(dir);
  let pkg = {};
  const manifest = path.join(dir, 'package.json');
  if (fs.existsSync(manifest)) pkg = JSON.parse(fs.readFileSync(manifest, 'utf8'));
  const file = require.resolve(path.resolve(dir, pkg.main || 'index.js'));
  const esm = file.endsWith('.mjs') || (pkg.type === 'module' && !file.endsWith('.cjs'));
  if (esm) return import(url.pathToFileURL(file).href);
  try {
    return require(file);
  } catch (err) {
    if (err && err.code === 'ERR_REQUIRE_ESM') return import(url.pathToFileURL(file).href);
    throw err;
  }
}

function pick(exported, entry) {
  if (exported == null) return null;
  if (typeof exported[entry] === 'function') return exported[entry];
  if (entry === 'main') {
    if (typeof exported === 'function') return exported; // module.exports = main
    if (typeof exported.default === 'function') return exported.default;
    if (exported.default && typeof exported.default.main === 'function') {
      return exported.default.main; // a CommonJS bundle imported as an ES module
    }
  }
  return typeof exported.__wisp_main === 'function' ? exported.__wisp_main : null;
}

// -- run ----------------------------------------------------------------------------

class Context {
  // DigitalOcean's `context`: camelCase as in its Node docs, and the Python
  // launcher's snake_case names, so one convention works in both languages.
  constructor(meta) {
    this.activationId = this.activation_id = meta.activation_id || '';
    this.requestId = this.request_id = meta.transaction_id || this.activationId;
    this.functionName = this.function_name = meta.action_name || '';
    this.functionVersion = this.function_version = meta.action_version || '';
    this.namespace = meta.namespace || '';
    this.apiHost = this.api_host = meta.api_host || '';
    this.apiKey = this.api_key = meta.api_key || '';
    this.deadline = Number(meta.deadline || 0);
    // 1-based: an asynchronous activation retried by its invokeConfig runs again.
    this.attempt = Number(meta.attempt || 1);
    // W3C trace context of this activation's span (empty when tracing is off).
    this.traceParent = this.trace_parent = this.traceparent = meta.trace_parent || '';
    this.traceState = this.trace_state = this.tracestate = meta.trace_state || '';
  }

  getRemainingTimeInMillis() {
    return Math.max(0, Math.floor(this.deadline - Date.now()));
  }

  get_remaining_time_in_millis() {
    return this.getRemainingTimeInMillis();
  }
}

async function run(message) {
  const meta = message.meta || {};
  const args = message.args || {};
  const env = process.env;
  env.__OW_ACTIVATION_ID = meta.activation_id || '';
  env.__OW_TRANSACTION_ID = meta.transaction_id || '';
  env.__OW_ACTION_NAME = `/${meta.namespace || ''}/${meta.action_name || ''}`;
  env.__OW_ACTION_VERSION = meta.action_version || '';
  env.__OW_NAMESPACE = meta.namespace || '';
  env.__OW_API_HOST = meta.api_host || '';
  env.__OW_DEADLINE = String(meta.deadline || '');
  env.__OW_ATTEMPT = String(meta.attempt || 1);
  if (meta.api_key) env.__OW_API_KEY = meta.api_key;
  // Never the previous activation's trace.
  if (meta.trace_parent) env.TRACEPARENT = meta.trace_parent;
  else delete env.TRACEPARENT;
  if (meta.trace_state) env.TRACESTATE = meta.trace_state;
  else delete env.TRACESTATE;
  let value;
  try {
    value = await new Promise((resolve, reject) => {
      current = { fail: reject };
      const out = withContext ? handler(args, new Context(meta)) : handler(args);
      Promise.resolve(out).then(resolve, reject);
    });
  } catch (err) {
    if (!(err instanceof Error) && err !== null && typeof err === 'object') {
      // OpenWhisk: a promise rejected with a plain object is an application error.
      return result({ error: err });
    }
    logError(err);
    return { exception: describe(err) };
  } finally {
    current = null;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const what = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
    return { invalid: `the function returned ${what}, not an object` };
  }
  return result(value);
}

function result(value) {
  let body;
  try {
    body = JSON.stringify(value);
  } catch (err) {
    return { invalid: `the result is not JSON serializable: ${err.message}` };
  }
  return `{"result":${body}}`;
}

// -- errors -------------------------------------------------------------------------

function describe(err) {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return `the function threw ${typeof err === 'string' ? JSON.stringify(err) : String(err)}`;
}

function lineOf(err) {
  const match = /index\.js:(\d+)/.exec(String(err.stack || ''));
  return match ? ` (line ${match[1]})` : '';
}

function logError(err) {
  let text = err instanceof Error ? String(err.stack || err) : `Uncaught ${String(err)}`;
  // The launcher's own frames are noise in the user's logs.
  text = text
    .split('\n')
    .filter((line) => !line.includes('[eval]') && !line.includes('node:internal'))
    .join('\n');
  process.stderr.write(text + '\n');
}
