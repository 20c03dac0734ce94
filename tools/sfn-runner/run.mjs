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
//   "lambdaEndpoint": "http://127.0.0.1:9000",            // optional: default $AWS_ENDPOINT_URL_LAMBDA
//   "historyLimit": 25000,                                // optional: fail at N history events
//   "fastTimeouts": 1,                                    // optional: Task TimeoutSeconds/HeartbeatSeconds factor
//   "fastPauses": 0                                       // optional: ms for a callback's TimeoutSecondsPath (timed waits)
// }
//
// stdout: ONE JSON object
//   { "status": "SUCCEEDED"|"FAILED"|"TIMED_OUT"|"ABORTED", "output": ..., "error": "...",
//     "cause": "...", "events": [ ...aws-local-stepfunctions event log... ],
//     "history": [ ...GetExecutionHistory events, AWS's model... ], "executionArn": "...",
//     "durationMs": N }
//
// The execution runs through the same Service as tools/sfn-local/server.mjs (service.mjs),
// in-process: the same history, quotas (payload, history size), execution-name rules, Task
// resources and time-outs. A `.waitForTaskToken` task waits for SendTaskSuccess/Failure: this
// process serves the Step Functions protocol on a 127.0.0.1 port of its own and, when
// $AWS_ENDPOINT_URL_SFN names a tools/sfn-local/server.mjs (the functions' endpoint), registers
// each task token there before the callback's Lambda runs, so SendTask* calls sent to the
// service reach this execution. Without one, only the task's time-outs (or timeoutMs) end it.
// Exit 0 whenever the run itself completed (FAILED included); 2 for runner errors (bad request,
// invalid or unsupported ASL), with a message on stderr.
//
// What it bridges (see docs/local-aws.md):
// - `${Name}` DefinitionSubstitutions are filled as CloudFormation does (text replacement in the
//   definition); an unknown `${X}` is an error.
// - Every Task state, Map/Parallel-nested ones included, gets an override handler (the library
//   passes run options down to the nested machines it builds) that POSTs to
//   /2015-03-31/functions/{binary}/invocations. Resources: `arn:aws:lambda:R:A:function:NAME[:Q]`,
//   `arn:aws:states:::lambda:invoke` (the optimised integration, emulated here: its result
//   is wrapped as {ExecutedVersion, Payload, SdkHttpMetadata, SdkResponseMetadata, StatusCode})
//   and `arn:aws:states:::lambda:invoke.waitForTaskToken`. Other resources (`.sync`, other
//   services) and JSONata are rejected up front.
// - A function error (HTTP 500 from cargo lambda watch, or an X-Amz-Function-Error header) is
//   thrown as an Error whose `name` is the Lambda errorType (what Retry/Catch ErrorEquals match)
//   and whose `message` is the function's error payload, `{"errorType":..,"errorMessage":..}`,
//   which the library puts in the Catch output's `Cause` and in ExecutionFailed, as AWS does.
//   HTTP 408 (cargo lambda watch --timeout) -> `Sandbox.Timedout`; 404 ->
//   `Lambda.ResourceNotFoundException`; 429 -> `Lambda.TooManyRequestsException`; any other
//   failure to get an answer -> `Lambda.ServiceException`. No retries in the runner itself.

import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { RunnerError, root, substitute } from './lib.mjs';
import { ApiError, Service, handler } from './service.mjs';

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
    'waitTimeOverrides', 'retryIntervalOverrides', 'context', 'timeoutMs', 'lambdaEndpoint',
    'historyLimit', 'fastTimeouts', 'fastPauses']);
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
  try {
    JSON.parse(text);
  } catch (e) {
    throw new RunnerError(`the definition is not JSON (after substitutions): ${e.message}`);
  }
  const context = request.context ?? {};
  // SendTask* for this execution's tokens: served here, registered with the local service.
  const listener = createServer();
  await new Promise((r, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', r);
  });
  listener.unref();
  const ownEndpoint = `http://127.0.0.1:${listener.address().port}`;
  const sfnService = process.env.AWS_ENDPOINT_URL_SFN;
  const onTaskToken = sfnService ? async (taskToken) => {
    try {
      const res = await fetch(sfnService, {
        method: 'POST',
        headers: { 'x-amz-target': 'AWSStepFunctions.OkraLocalForwardTask', 'content-type': 'application/x-amz-json-1.0' },
        body: JSON.stringify({ taskToken, endpoint: ownEndpoint }),
      });
      if (res.status !== 200) console.error(`sfn-runner: ${sfnService} refused the task token: HTTP ${res.status} ${await res.text()}`);
    } catch (e) {
      console.error(`sfn-runner: registering a task token with ${sfnService}: ${e.message}`);
    }
  } : undefined;
  const service = new Service({
    lambdaEndpoint: request.lambdaEndpoint ?? process.env.AWS_ENDPOINT_URL_LAMBDA,
    historyLimit: request.historyLimit,
    fastTimeouts: request.fastTimeouts,
    fastPauses: request.fastPauses,
    onTaskToken,
  });
  listener.on('request', handler(service));
  const api = async (op, ...args) => {
    try {
      return await service[op](...args);
    } catch (e) {
      if (e instanceof ApiError) throw new RunnerError(`${op}: ${e.type}: ${e.message}`);
      throw e;
    }
  };
  const { stateMachineArn } = await api('CreateStateMachine', {
    name: context.StateMachine?.Name ?? 'okra-local',
    definition: text,
    roleArn: context.Execution?.RoleArn ?? 'arn:aws:iam::123456789012:role/okra-local',
  });
  const started = performance.now();
  const { executionArn } = await api('StartExecution', {
    stateMachineArn,
    name: context.Execution?.Name ?? randomUUID(),
    input: JSON.stringify(request.input ?? {}),
  }, {
    substitutions: request.substitutions,
    functions: request.functions,
    waitTimeOverrides: request.waitTimeOverrides,
    retryIntervalOverrides: request.retryIntervalOverrides,
    context,
  });
  const exec = service.executions.get(executionArn);
  let timer;
  if (request.timeoutMs !== undefined) {
    timer = setTimeout(() => service.StopExecution({
      executionArn, error: 'Runner.Aborted', cause: `aborted after timeoutMs=${request.timeoutMs}`,
    }), Number(request.timeoutMs));
  }
  await exec.done;
  clearTimeout(timer);
  const durationMs = Math.round(performance.now() - started);
  // The library's event log is read asynchronously (nested events are forwarded late).
  await Promise.race([exec.libEventsDone, new Promise((r) => setTimeout(r, 1000))]);
  return {
    status: exec.status,
    output: exec.status === 'SUCCEEDED' ? exec.output ?? null : null,
    error: exec.error ?? null,
    cause: exec.cause ?? null,
    executionArn,
    events: exec.libEvents,
    history: exec.history,
    durationMs,
  };
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
