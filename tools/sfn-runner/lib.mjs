// okra sfn-runner's shared part: what tools/sfn-runner/run.mjs (one run, one process) and
// tools/sfn-local/server.mjs (a local Step Functions service) both need: DefinitionSubstitutions,
// the supported-ASL check, Task states invoking REAL function binaries through the Lambda Invoke
// API of `cargo lambda watch`, the Context Object, and how a run ended. See run.mjs's header for
// the bridging rules (function errors, timeouts, `lambda:invoke`).

import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { AsyncLocalStorage } from 'node:async_hooks';
import Module from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
export const root = process.env.OKRA_ROOT ? resolve(process.env.OKRA_ROOT) : resolve(here, '..', '..');

export class RunnerError extends Error {}

export const REGION_DEFAULT = process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1';
export const ACCOUNT_DEFAULT = '123456789012';
const LAMBDA_ARN = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):function:([A-Za-z0-9_-]+)(?::([A-Za-z0-9_$-]+))?$/;
export const LAMBDA_INVOKE = /^arn:aws[a-zA-Z-]*:states:::lambda:invoke$/;
export const LAMBDA_CALLBACK = /^arn:aws[a-zA-Z-]*:states:::lambda:invoke\.waitForTaskToken$/;
export const LAMBDA_FUNCTION = LAMBDA_ARN;

// AWS Step Functions quotas (developer guide, "Step Functions service quotas"):
// "Maximum input or output size for a task, state, or execution: 256 KiB of data as a UTF-8
// encoded string" and "Maximum execution history size: 25,000 events".
export const PAYLOAD_LIMIT_BYTES = 262144;
export const HISTORY_LIMIT_EVENTS = 25000;
export const payloadBytes = (value) => Buffer.byteLength(typeof value === 'string' ? value : JSON.stringify(value ?? null), 'utf8');

// CloudFormation's DefinitionSubstitutions: every `${Name}` in the definition text is replaced by
// the value of Name (strings, numbers and booleans, as text). An unknown name is an error here
// (CloudFormation would leave it and the machine would break later, or fail to create).
export function substitute(text, substitutions = {}) {
  const unknown = new Set();
  const out = text.replace(/\$\{([^}]*)\}/g, (whole, name) => {
    if (!Object.prototype.hasOwnProperty.call(substitutions, name)) {
      unknown.add(name);
      return whole;
    }
    const v = substitutions[name];
    if (!['string', 'number', 'boolean'].includes(typeof v)) {
      throw new RunnerError(`substitution "${name}" must be a string, number or boolean`);
    }
    return String(v);
  });
  if (unknown.size > 0) {
    throw new RunnerError(`unknown DefinitionSubstitutions in the definition: ${[...unknown].map((n) => '${' + n + '}').join(', ')}`);
  }
  return out;
}

// ------------------------------------------------------------------ definition walk
// Yields [stateName, state, path] for every state, nested Map/Parallel machines included.
export function* allStates(machine, path = []) {
  for (const [name, state] of Object.entries(machine?.States ?? {})) {
    yield [name, state, [...path, name]];
    if (state.Type === 'Map') {
      const inner = state.ItemProcessor ?? state.Iterator;
      if (inner) yield* allStates(inner, [...path, name]);
    } else if (state.Type === 'Parallel') {
      for (const [i, branch] of (state.Branches ?? []).entries()) {
        yield* allStates(branch, [...path, `${name}[${i}]`]);
      }
    }
  }
}

export function checkSupported(definition) {
  const problems = [];
  if (definition.QueryLanguage === 'JSONata') problems.push('QueryLanguage JSONata (top level)');
  for (const [, state, path] of allStates(definition)) {
    if (state.QueryLanguage === 'JSONata') problems.push(`${path.join('/')}: QueryLanguage JSONata`);
    if (state.Type === 'Map' && (state.ItemProcessor?.ProcessorConfig?.Mode === 'DISTRIBUTED' || state.ItemReader)) {
      problems.push(`${path.join('/')}: distributed Map / ItemReader`);
    }
    if (state.Type === 'Task' && typeof state.Resource === 'string'
        && !LAMBDA_ARN.test(state.Resource) && !LAMBDA_INVOKE.test(state.Resource)
        && !LAMBDA_CALLBACK.test(state.Resource)) {
      problems.push(`${path.join('/')}: Task Resource ${state.Resource} (only Lambda function ARNs, arn:aws:states:::lambda:invoke and lambda:invoke.waitForTaskToken are emulated)`);
    }
    // AWS refuses a callback task whose Parameters do not pass the token on (the
    // "Wait for a Callback with Task Token" page: "you must pass a task token").
    if (state.Type === 'Task' && LAMBDA_CALLBACK.test(state.Resource ?? '')
        && !JSON.stringify(state.Parameters ?? {}).includes('$$.Task.Token')) {
      problems.push(`${path.join('/')}: .waitForTaskToken needs $$.Task.Token in its Parameters`);
    }
  }
  if (problems.length) throw new RunnerError(`unsupported by the local runner:\n  ${problems.join('\n  ')}`);
}

// ------------------------------------------------------------------ function mapping
export function functionResolver(substitutions = {}, functions = {}) {
  const byValue = new Map();
  for (const [k, v] of Object.entries(substitutions)) byValue.set(String(v), k);
  return (resourceOrName) => {
    const ref = String(resourceOrName);
    if (functions[ref]) return functions[ref];
    const subName = byValue.get(ref);
    if (subName && functions[subName]) return functions[subName];
    const m = LAMBDA_ARN.exec(ref);
    const name = m ? m[3] : ref.includes(':') ? ref.split(':').at(-1) : ref;
    if (functions[name]) return functions[name];
    // partial ARN "123456789012:function:NAME" or "function:NAME"
    const partial = /(?:^|:)function:([A-Za-z0-9_-]+)/.exec(ref);
    if (partial) return functions[partial[1]] ?? partial[1];
    return name;
  };
}

// ------------------------------------------------------------------ Lambda Invoke over HTTP
export class LambdaError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

export function makeInvoker(endpoint, signal) {
  return async function invoke(binary, payload) {
    if (!endpoint) {
      throw new LambdaError('Lambda.ServiceException',
        'no Lambda endpoint: set AWS_ENDPOINT_URL_LAMBDA (cargo lambda watch) or "lambdaEndpoint"');
    }
    const url = `${endpoint.replace(/\/+$/, '')}/2015-03-31/functions/${encodeURIComponent(binary)}/invocations`;
    let response;
    let text;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload ?? null),
        signal,
      });
      text = await response.text();
    } catch (e) {
      throw new LambdaError('Lambda.ServiceException', `invoking ${binary} at ${url} failed: ${e.cause?.message ?? e.message}`);
    }
    const functionError = response.headers.get('x-amz-function-error');
    if (response.status === 200 && !functionError) {
      if (text.trim() === '') return null;
      try {
        return JSON.parse(text);
      } catch {
        throw new LambdaError('Lambda.ServiceException', `${binary} returned a payload that is not JSON: ${text.slice(0, 500)}`);
      }
    }
    // A function error: cargo lambda watch answers 500 with the runtime's error payload;
    // AWS (and moto) answer 200 with X-Amz-Function-Error.
    if (response.status === 500 || functionError) {
      let body;
      try { body = JSON.parse(text); } catch { body = undefined; }
      if (body && typeof body === 'object' && typeof body.errorType === 'string') {
        throw new LambdaError(body.errorType, text.trim());
      }
      if (functionError) {
        const cause = JSON.stringify({ errorType: functionError, errorMessage: text });
        throw new LambdaError(functionError, cause);
      }
    }
    if (response.status === 408) {
      const cause = JSON.stringify({ errorType: 'Sandbox.Timedout', errorMessage: `${binary} did not answer within cargo lambda watch's --timeout` });
      throw new LambdaError('Sandbox.Timedout', cause);
    }
    if (response.status === 404) {
      throw new LambdaError('Lambda.ResourceNotFoundException', `function ${binary} not found: ${text.slice(0, 500)}`);
    }
    if (response.status === 429) {
      throw new LambdaError('Lambda.TooManyRequestsException', text.slice(0, 500));
    }
    throw new LambdaError('Lambda.ServiceException', `invoking ${binary}: HTTP ${response.status}: ${text.slice(0, 500)}`);
  };
}

// ------------------------------------------------------------------ the library, instrumented
// aws-local-stepfunctions keeps its event log asynchronous (nested Map/Parallel events are
// forwarded later) and exports no hooks. For AWS's history model we need every event in order,
// synchronously: the library's CommonJS build is compiled once more with its internal classes
// exported, and EventLogger/Map/Parallel get small wrappers. Which execution an event belongs
// to comes from an AsyncLocalStorage store set around each run (`als.run(store, ...)`); a store
// is `{ sink, nested?: {kind: 'map'|'parallel', name, index} }` and `sink(event, store)` gets
// every library event as it is dispatched.
export const als = new AsyncLocalStorage();
let libraryPromise;

export function loadLibrary() {
  libraryPromise ??= Promise.resolve().then(loadInstrumented);
  return libraryPromise;
}

function loadInstrumented() {
  const dir = process.env.OKRA_SFN_NODE_MODULES
    ? resolve(process.env.OKRA_SFN_NODE_MODULES)
    : join(root, 'tools', 'local-aws', 'node', 'node_modules');
  const pkgDir = join(dir, 'aws-local-stepfunctions');
  let pkg;
  try {
    pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  } catch {
    throw new RunnerError(`aws-local-stepfunctions not found under ${dir}: run tools/local-aws/install.sh`);
  }
  if (pkg.version !== '3.0.0') throw new RunnerError(`aws-local-stepfunctions ${pkg.version}: the instrumentation is written for 3.0.0`);
  const file = join(pkgDir, pkg.main);
  const source = readFileSync(file, 'utf8');
  const m = new Module(file, null);
  m.filename = file;
  m.paths = Module._nodeModulePaths(dirname(file));
  m._compile(`${source}\nmodule.exports.__internals = { EventLogger, MapStateAction, ParallelStateAction, StatesTimeoutError, jsonPathQuery };\n`, file);
  const lib = m.exports;
  instrument(lib.__internals);
  return lib;
}

function instrument({ EventLogger, MapStateAction, ParallelStateAction, jsonPathQuery }) {
  let forwarding = 0;
  const dispatch = EventLogger.prototype.dispatch;
  EventLogger.prototype.dispatch = function okraDispatch(event) {
    if (!forwarding && !this.isLoggerClosed) {
      const store = als.getStore();
      if (store?.sink) store.sink(event, store);
    }
    return dispatch.call(this, event);
  };
  // Re-dispatches of nested events into the root logger: already seen when they happened.
  for (const name of ['forwardNestedMapEvent', 'forwardNestedParallelEvent']) {
    const original = EventLogger.prototype[name];
    EventLogger.prototype[name] = function okraForward(...args) {
      forwarding++;
      try {
        return original.apply(this, args);
      } finally {
        forwarding--;
      }
    };
  }
  const around = (Action, kind, startedDetails) => {
    const execute = Action.prototype.execute;
    Action.prototype.execute = async function okraExecute(input, context, options) {
      const store = als.getStore();
      this.okraStore = store;
      const state = this.stateDefinition;
      store?.emit?.(store, `${kind}StateStarted`, startedDetails(state, input, context));
      try {
        const result = await execute.call(this, input, context, options);
        store?.emit?.(store, `${kind}StateSucceeded`, {});
        return result;
      } catch (e) {
        store?.emit?.(store, `${kind}StateFailed`, {});
        throw e;
      }
    };
  };
  around(MapStateAction, 'Map', (state, input, context) => {
    let items = input;
    try {
      if (state.ItemsPath) items = jsonPathQuery(state.ItemsPath, input, context, {});
    } catch { /* the library reports it */ }
    return Array.isArray(items) ? { mapStateStartedEventDetails: { length: items.length } } : {};
  });
  around(ParallelStateAction, 'Parallel', () => ({}));
  const processItem = MapStateAction.prototype.processItem;
  MapStateAction.prototype.processItem = function okraItem(sm, item, input, context, index, options) {
    const parent = this.okraStore;
    if (!parent) return processItem.call(this, sm, item, input, context, index, options);
    return als.run({ ...parent, inputs: {}, nested: { kind: 'map', name: this.stateName, index } },
      () => processItem.call(this, sm, item, input, context, index, options));
  };
  const processBranch = ParallelStateAction.prototype.processBranch;
  ParallelStateAction.prototype.processBranch = function okraBranch(branch, input, context, options) {
    const parent = this.okraStore;
    if (!parent) return processBranch.call(this, branch, input, context, options);
    return als.run({ ...parent, inputs: {}, nested: { kind: 'parallel', name: this.stateName } },
      () => processBranch.call(this, branch, input, context, options));
  };
}

// An error that no Retry or Catch matches, States.ALL included (the library reads these flags).
export function uncatchable(name, message) {
  const e = new Error(message);
  e.name = name;
  e.isRetryable = false;
  e.isCatchable = false;
  return e;
}

export function defaultContext(userContext = {}) {
  const name = randomUUID();
  const machineArn = `arn:aws:states:${REGION_DEFAULT}:${ACCOUNT_DEFAULT}:stateMachine:okra-local`;
  const ctx = {
    StateMachine: { Id: machineArn, Name: 'okra-local' },
    ...userContext,
    Execution: {
      Id: `arn:aws:states:${REGION_DEFAULT}:${ACCOUNT_DEFAULT}:execution:okra-local:${name}`,
      Name: name,
      RoleArn: `arn:aws:iam::${ACCOUNT_DEFAULT}:role/okra-local`,
      ...(userContext.Execution ?? {}),
    },
  };
  return ctx;
}

export function stringOrJson(v) {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

// How a run ended, as Step Functions reports it: { status, output, error, cause }.
// `abortCause` is the cause reported for an aborted run.
export async function settle(execution, lib, abortCause = 'aborted') {
  const { ExecutionError, ExecutionTimeoutError, ExecutionAbortedError } = lib;
  const result = { status: 'SUCCEEDED', output: null, error: null, cause: null };
  try {
    result.output = await execution.result;
  } catch (e) {
    if (e instanceof ExecutionTimeoutError) {
      result.status = 'TIMED_OUT';
      result.error = 'States.Timeout';
      result.cause = 'The execution timed out (TimeoutSeconds)';
    } else if (e instanceof ExecutionAbortedError) {
      result.status = 'ABORTED';
      result.error = 'Runner.Aborted';
      result.cause = abortCause;
    } else if (e instanceof ExecutionError) {
      result.status = 'FAILED';
      const inner = e.cause ?? e;
      result.error = inner.name;
      result.cause = stringOrJson(inner.cause ?? inner.message) ?? null;
      // A Fail state without Error/Cause: AWS reports neither (the library invents defaults).
      if (inner.constructor?.name === 'FailStateError') {
        if (inner.name === 'FailStateError') result.error = null;
        if (inner.message === 'Execution failed because of a Fail state') result.cause = null;
      }
    } else {
      throw e;
    }
  }
  return result;
}

// Every Wait state's name, nested ones included (for a blanket wait override).
export function waitStates(definition) {
  const names = [];
  for (const [name, state] of allStates(definition)) if (state.Type === 'Wait') names.push(name);
  return names;
}

// ------------------------------------------------------------------ EventBridge content filtering
// The subset of EventBridge event patterns okra needs (EventBridge user guide, "Event patterns"
// and "Content filtering"): a pattern is an object whose leaves are ARRAYS of alternatives; an
// alternative is a literal (string, number, boolean, null: equality), or one of
// `{"prefix": "s"}`, `{"anything-but": v | [v...] | {"prefix": "s"}}`, `{"exists": bool}`.
// An event field that is an array matches when any of its elements does. Nested objects nest.
export function eventMatches(pattern, event) {
  if (pattern === null || typeof pattern !== 'object' || Array.isArray(pattern)) {
    throw new RunnerError('an event pattern must be a JSON object');
  }
  for (const [key, rule] of Object.entries(pattern)) {
    const present = event !== null && typeof event === 'object' && Object.prototype.hasOwnProperty.call(event, key);
    const value = present ? event[key] : undefined;
    if (Array.isArray(rule)) {
      if (!rule.some((alt) => alternativeMatches(alt, value, present))) return false;
    } else if (rule !== null && typeof rule === 'object') {
      if (!present || value === null || typeof value !== 'object' || Array.isArray(value)) return false;
      if (!eventMatches(rule, value)) return false;
    } else {
      throw new RunnerError(`event pattern field "${key}": the value must be an array or an object`);
    }
  }
  return true;
}

function alternativeMatches(alt, value, present) {
  if (alt !== null && typeof alt === 'object' && !Array.isArray(alt)) {
    if ('exists' in alt) {
      // "exists": true matches a present leaf that is not an object/array; false matches absent.
      const leaf = present && (value === null || typeof value !== 'object' || Array.isArray(value));
      return alt.exists ? leaf : !present;
    }
    if (!present) return false;
    const values = Array.isArray(value) ? value : [value];
    if ('prefix' in alt) return values.some((v) => typeof v === 'string' && v.startsWith(String(alt.prefix)));
    if ('anything-but' in alt) {
      const but = alt['anything-but'];
      if (but !== null && typeof but === 'object' && !Array.isArray(but) && 'prefix' in but) {
        return values.every((v) => typeof v === 'string' && !v.startsWith(String(but.prefix)));
      }
      const excluded = Array.isArray(but) ? but : [but];
      return values.every((v) => !excluded.some((x) => x === v));
    }
    throw new RunnerError(`unsupported event pattern operator ${JSON.stringify(alt)}`);
  }
  if (!present) return false;
  const values = Array.isArray(value) ? value : [value];
  return values.some((v) => v === alt);
}
