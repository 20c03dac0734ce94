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
import { isAbsolute, join } from 'node:path';
import {
  RunnerError, checkSupported, defaultContext, functionResolver, loadLibrary, makeInvoker, root,
  settle, substitute, taskHandlers,
} from './lib.mjs';

export { substitute };

// Nothing but the result may reach stdout.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

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

  const lib = await loadLibrary();
  const { StateMachine } = lib;
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

  let result;
  try {
    result = await settle(execution, lib, `aborted after timeoutMs=${request.timeoutMs}`);
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
