// okra sfn-runner's shared part: what tools/sfn-runner/run.mjs (one run, one process) and
// tools/sfn-local/server.mjs (a local Step Functions service) both need: DefinitionSubstitutions,
// the supported-ASL check, Task states invoking REAL function binaries through the Lambda Invoke
// API of `cargo lambda watch`, the Context Object, and how a run ended. See run.mjs's header for
// the bridging rules (function errors, timeouts, `lambda:invoke`).

import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomUUID } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
export const root = process.env.OKRA_ROOT ? resolve(process.env.OKRA_ROOT) : resolve(here, '..', '..');

export class RunnerError extends Error {}

export const REGION_DEFAULT = process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1';
export const ACCOUNT_DEFAULT = '123456789012';
const LAMBDA_ARN = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):function:([A-Za-z0-9_-]+)(?::([A-Za-z0-9_$-]+))?$/;
const LAMBDA_INVOKE = /^arn:aws[a-zA-Z-]*:states:::lambda:invoke$/;

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
        && !LAMBDA_ARN.test(state.Resource) && !LAMBDA_INVOKE.test(state.Resource)) {
      problems.push(`${path.join('/')}: Task Resource ${state.Resource} (only Lambda function ARNs and arn:aws:states:::lambda:invoke are emulated)`);
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

export function taskHandlers(definition, resolveFunction, invoke) {
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
export function loadLibrary() {
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
