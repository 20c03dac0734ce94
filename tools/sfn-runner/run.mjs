#!/usr/bin/env node
// okra sfn-runner: runs an Amazon States Language machine locally with aws-local-stepfunctions
// (its library API, not its CLI), every Task state calling a REAL function binary through the
// Lambda Invoke API of `cargo lambda watch` (AWS_ENDPOINT_URL_LAMBDA).
//
// Usage: <node 22> tools/sfn-runner/run.mjs REQUEST.json
//
// REQUEST.json:
// {
//   "definitionPath": "statemachine/rollout.asl.json",   // relative to the repo root (or absolute)
//   "definition": { ... },                                // ...or the definition inline
//   "substitutions": { "DiscoverClustersFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:discover-clusters" },
//   "functions": { "DiscoverClustersFunctionArn": "discover-clusters" }, // key: substitution name, ARN or function name
//   "input": { ... },
//   "waitTimeOverrides": { "WaitForBake": 0 },            // ms, per Wait state
//   "retryIntervalOverrides": { "Shift": 0 },             // ms (or [ms per retrier]), per state
//   "context": { ... },                                   // merged into the Context Object ($$)
//   "timeoutMs": 120000,                                  // optional: abort the run (status ABORTED)
//   "lambdaEndpoint": "http://127.0.0.1:9000"             // optional: default $AWS_ENDPOINT_URL_LAMBDA
// }
//
// stdout: ONE JSON object
//   { "status": "SUCCEEDED"|"FAILED"|"TIMED_OUT"|"ABORTED", "output": ..., "error": "...",
//     "cause": "...", "events": [ ...aws-local-stepfunctions event log... ], "durationMs": N }
// Exit 0 whenever the run itself completed (FAILED included); 2 for runner errors (bad request,
// invalid or unsupported ASL), with a message on stderr.
//
// What it bridges (see docs/local-aws.md):
// - `${Name}` DefinitionSubstitutions are filled as CloudFormation does (text replacement in the
//   definition); an unknown `${X}` is an error.
// - Every Task state, Map/Parallel-nested ones included, gets an override handler (the library
//   passes run options down to the nested machines it builds) that POSTs to
//   /2015-03-31/functions/{binary}/invocations. Resources: `arn:aws:lambda:R:A:function:NAME[:Q]`,
//   and `arn:aws:states:::lambda:invoke` (the optimised integration, emulated here: its result
//   is wrapped as {ExecutedVersion, Payload, SdkHttpMetadata, SdkResponseMetadata, StatusCode}).
//   Other resources (`.waitForTaskToken`, other services) and JSONata are rejected up front.
// - A function error (HTTP 500 from cargo lambda watch, or an X-Amz-Function-Error header) is
//   thrown as an Error whose `name` is the Lambda errorType (what Retry/Catch ErrorEquals match)
//   and whose `message` is the function's error payload, `{"errorType":..,"errorMessage":..}`,
//   which the library puts in the Catch output's `Cause` and in ExecutionFailed, as AWS does.
//   HTTP 408 (cargo lambda watch --timeout) -> `Sandbox.Timedout`; 404 ->
//   `Lambda.ResourceNotFoundException`; 429 -> `Lambda.TooManyRequestsException`; any other
//   failure to get an answer -> `Lambda.ServiceException`. No retries in the runner itself.

import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomUUID } from 'node:crypto';

// Nothing but the result may reach stdout.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

const here = dirname(fileURLToPath(import.meta.url));
const root = process.env.OKRA_ROOT ? resolve(process.env.OKRA_ROOT) : resolve(here, '..', '..');

class RunnerError extends Error {}

const REGION_DEFAULT = process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1';
const ACCOUNT_DEFAULT = '123456789012';
const LAMBDA_ARN = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):function:([A-Za-z0-9_-]+)(?::([A-Za-z0-9_$-]+))?$/;
const LAMBDA_INVOKE = /^arn:aws[a-zA-Z-]*:states:::lambda:invoke$/;

// ------------------------------------------------------------------ request
async function loadRequest(path) {
  if (!path) throw new RunnerError('usage: run.mjs REQUEST.json');
  let request;
  try {
    request = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new RunnerError(`cannot read request ${path}: ${e.message}`);
  }
  if (request === null || typeof request !== 'object' || Array.isArray(request)) {
    throw new RunnerError('the request must be a JSON object');
  }
  const known = new Set(['definitionPath', 'definition', 'substitutions', 'functions', 'input',
    'waitTimeOverrides', 'retryIntervalOverrides', 'context', 'timeoutMs', 'lambdaEndpoint']);
  for (const key of Object.keys(request)) {
    if (!known.has(key)) throw new RunnerError(`unknown request field "${key}"`);
  }
  if ((request.definitionPath === undefined) === (request.definition === undefined)) {
    throw new RunnerError('give exactly one of "definitionPath" and "definition"');
  }
  for (const key of ['substitutions', 'functions', 'waitTimeOverrides', 'retryIntervalOverrides', 'context']) {
    const v = request[key];
    if (v !== undefined && (v === null || typeof v !== 'object' || Array.isArray(v))) {
      throw new RunnerError(`"${key}" must be an object`);
    }
  }
  return request;
}

async function definitionText(request) {
  if (request.definition !== undefined) {
    return typeof request.definition === 'string' ? request.definition : JSON.stringify(request.definition);
  }
  const p = isAbsolute(request.definitionPath) ? request.definitionPath : join(root, request.definitionPath);
  try {
    return await readFile(p, 'utf8');
  } catch (e) {
    throw new RunnerError(`cannot read definition ${p}: ${e.message}`);
  }
}

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
function* allStates(machine, path = []) {
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

function checkSupported(definition) {
  const problems = [];
  if (definition.QueryLanguage === 'JSONata') problems.push('QueryLanguage JSONata (top level)');
  for (const [, state, path] of allStates(definition)) {
    if (state.QueryLanguage === 'JSONata') problems.push(`${path.join('/')}: QueryLanguage JSONata`);
    if (state.Type === 'Map' && (state.ItemProcessor?.ProcessorConfig?.Mode === 'DISTRIBUTED' || state.ItemReader)) {
      problems.push(`${path.join('/')}: distributed Map / ItemReader`);
    }
    if (state.Type === 'Task' && typeof state.Resource === 'string'
        && !LAMBDA_ARN.test(state.Resource) && !LAMBDA_INVOKE.test(state.Resource)) {
      problems.push(`${path.join('/')}: Task Resource ${state.Resource} (only Lambda function ARNs and arn:aws:states:::lambda:invoke are emulated)`);
    }
  }
  if (problems.length) throw new RunnerError(`unsupported by the local runner:\n  ${problems.join('\n  ')}`);
}

// ------------------------------------------------------------------ function mapping
function functionResolver(substitutions = {}, functions = {}) {
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
class LambdaError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

function makeInvoker(endpoint, signal) {
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

function taskHandlers(definition, resolveFunction, invoke) {
  const handlers = {};
  const resources = {};
  for (const [name, state, path] of allStates(definition)) {
    if (state.Type !== 'Task') continue;
    if (resources[name] !== undefined && resources[name] !== state.Resource) {
      throw new RunnerError(`two Task states named "${name}" with different resources (${path.join('/')}); state names must be unique`);
    }
    resources[name] = state.Resource;
    if (LAMBDA_INVOKE.test(state.Resource)) {
      handlers[name] = async (input) => {
        const fn = input?.FunctionName;
        if (typeof fn !== 'string') {
          throw new LambdaError('States.Runtime', `${name}: lambda:invoke needs Parameters.FunctionName`);
        }
        const payload = await invoke(resolveFunction(fn), input.Payload ?? {});
        const requestId = randomUUID();
        return {
          ExecutedVersion: '$LATEST',
          Payload: payload,
          SdkHttpMetadata: { HttpHeaders: { 'Content-Type': 'application/json', 'X-Amz-Executed-Version': '$LATEST', 'x-amzn-RequestId': requestId }, HttpStatusCode: 200 },
          SdkResponseMetadata: { RequestId: requestId },
          StatusCode: 200,
        };
      };
    } else {
      const binary = resolveFunction(state.Resource);
      handlers[name] = (input) => invoke(binary, input);
    }
  }
  return handlers;
}

// ------------------------------------------------------------------ run
function loadLibrary() {
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
  return import(pathToFileURL(join(pkgDir, pkg.exports?.import ?? pkg.module)).href);
}

function defaultContext(userContext = {}) {
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

function stringOrJson(v) {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

async function main() {
  const request = await loadRequest(process.argv[2]);
  const text = substitute(await definitionText(request), request.substitutions);
  let definition;
  try {
    definition = JSON.parse(text);
  } catch (e) {
    throw new RunnerError(`the definition is not JSON (after substitutions): ${e.message}`);
  }
  checkSupported(definition);

  const { StateMachine, ExecutionError, ExecutionTimeoutError, ExecutionAbortedError } = await loadLibrary();
  let machine;
  try {
    machine = new StateMachine(definition, { validationOptions: { checkPaths: true, checkArn: true } });
  } catch (e) {
    throw new RunnerError(e.message);
  }

  const controller = new AbortController();
  const invoke = makeInvoker(request.lambdaEndpoint ?? process.env.AWS_ENDPOINT_URL_LAMBDA, controller.signal);
  const resolveFunction = functionResolver(request.substitutions, request.functions);
  const overrides = {
    taskResourceLocalHandlers: taskHandlers(definition, resolveFunction, invoke),
    waitTimeOverrides: request.waitTimeOverrides ?? {},
    retryIntervalOverrides: request.retryIntervalOverrides ?? {},
  };

  const started = performance.now();
  const execution = machine.run(request.input ?? {}, {
    overrides,
    context: defaultContext(request.context),
  });
  const events = [];
  const collecting = (async () => {
    for await (const event of execution.eventLogs) events.push(event);
  })();
  let timer;
  if (request.timeoutMs !== undefined) {
    timer = setTimeout(() => execution.abort(), Number(request.timeoutMs));
  }

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
      result.cause = `aborted after timeoutMs=${request.timeoutMs}`;
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
  } finally {
    clearTimeout(timer);
  }
  result.durationMs = Math.round(performance.now() - started);
  await Promise.race([collecting, new Promise((r) => setTimeout(r, 1000))]);
  result.events = events;
  controller.abort(); // drop invocations still in flight (a timed-out Task, an aborted run)
  return result;
}

main().then(
  (result) => {
    process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
  },
  (e) => {
    const message = e instanceof RunnerError ? e.message : (e?.stack ?? String(e));
    process.stderr.write(`sfn-runner: ${message}\n`, () => process.exit(2));
  },
);
