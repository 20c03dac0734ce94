#!/usr/bin/env node
// okra sfn-local: a local AWS Step Functions service for the demo and the tests. It speaks the
// Step Functions JSON protocol (POST /, `X-Amz-Target: AWSStepFunctions.<Op>`,
// `Content-Type: application/x-amz-json-1.0`), so the functions' aws-sdk-sfn clients (pointed
// here by `AWS_ENDPOINT_URL_SFN`) and the `okra` CLI talk to it exactly as to AWS. Executions run
// in the background with aws-local-stepfunctions; every Task state invokes a REAL function
// binary through cargo lambda watch (tools/sfn-runner/lib.mjs, shared with run.mjs).
//
// Usage: <node 22> tools/sfn-local/server.mjs [--host 127.0.0.1] [--port N] [--fast-waits MS]
//            [--fast-timeouts F] [--history-limit N] [--event-rule JSON]... [--lambda-endpoint URL]
//            [--iam-authorizer URL] [--fast-pauses MS|off] [--person-waits F]
//   --port 0 (the default) picks a free port. The first stdout line is `{"port": N}`.
//   --fast-waits MS (or $OKRA_SFN_FAST_WAITS_MS): every Wait state of every execution waits MS
//     milliseconds instead of its Seconds/SecondsPath/Timestamp (the demo's shortened pauses:
//     a flag of the service, not a different state machine).
//   --fast-pauses MS|off (or $OKRA_SFN_FAST_PAUSES_MS): a callback task's time-out given by
//     TimeoutSecondsPath fires after MS milliseconds: okra's timed waits are callbacks (a timed
//     pause, an analysis interval, a wait for a person woken for a background sample), so that
//     a signal ends them at once. Default: --fast-waits' MS; `off`: as written (x --fast-timeouts).
//   --fast-timeouts F: Task TimeoutSeconds and HeartbeatSeconds count F seconds per second
//     (0.01: a 300 s timeout fires after 3 s). Default 1.
//   --person-waits F: a wait for a person's time-out (its callback's payload has `"wait":
//     "person"` and the `seconds` it keeps: a deadline, which --fast-pauses leaves alone) counts
//     F seconds per second (0.01: `timeout: 1m` fires after 0.6 s). Default 1. A weight step
//     held until its deployment window opens (`"wait": "window"`) is such a deadline too.
//   --history-limit N: an execution fails at N history events instead of AWS's 25,000.
//   --event-rule '{"pattern": {EventBridge pattern}, "function": "NAME"}' (repeatable; also
//     $OKRA_SFN_EVENT_RULES, a JSON array of such rules): each "Step Functions Execution Status
//     Change" event that matches is delivered to function binary NAME through the Lambda
//     endpoint, asynchronously, 3 attempts.
//   --lambda-endpoint (default $AWS_ENDPOINT_URL_LAMBDA): cargo lambda watch.
//   --iam-authorizer URL (or $OKRA_IAM_AUTHORIZER): the strict moto; each request of one of okra's
//     functions is authorized there first, as IAM authorizes the function's role (authorizer()).
//
// Operations: CreateStateMachine (the definition with its ARNs already substituted),
// DescribeStateMachine, ListStateMachines, DeleteStateMachine, StartExecution, DescribeExecution,
// ListExecutions, GetExecutionHistory (AWS's event model, paginated), StopExecution,
// SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat. Errors are AWS's shape: HTTP 400
// `{"__type": "ExecutionAlreadyExists", "message": ".."}`. State lives in memory. What each
// operation emulates: tools/sfn-runner/service.mjs (shared with run.mjs).

import { createServer } from 'node:http';
import { RunnerError } from '../sfn-runner/lib.mjs';
import { ApiError, LOCAL_OPERATIONS, Service, handler } from '../sfn-runner/service.mjs';

console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

// ------------------------------------------------------------------ options
function options(argv) {
  const o = {
    host: '127.0.0.1',
    port: 0,
    fastWaits: process.env.OKRA_SFN_FAST_WAITS_MS !== undefined && process.env.OKRA_SFN_FAST_WAITS_MS !== ''
      ? Number(process.env.OKRA_SFN_FAST_WAITS_MS) : undefined,
    lambdaEndpoint: process.env.AWS_ENDPOINT_URL_LAMBDA,
    iamAuthorizer: process.env.OKRA_IAM_AUTHORIZER || undefined,
    fastPauses: process.env.OKRA_SFN_FAST_PAUSES_MS || undefined,
    fastTimeouts: undefined,
    personWaits: undefined,
    historyLimit: undefined,
    eventRules: [],
  };
  if (process.env.OKRA_SFN_EVENT_RULES) {
    let rules;
    try {
      rules = JSON.parse(process.env.OKRA_SFN_EVENT_RULES);
    } catch (e) {
      throw new RunnerError(`$OKRA_SFN_EVENT_RULES: not JSON: ${e.message}`);
    }
    if (!Array.isArray(rules)) throw new RunnerError('$OKRA_SFN_EVENT_RULES: a JSON array of {"pattern", "function"}');
    o.eventRules.push(...rules);
  }
  // `--flag value` or `--flag=value`
  argv = argv.flatMap((a) => (a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a]));
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--host': o.host = v; i++; break;
      case '--port': o.port = Number(v); i++; break;
      case '--fast-waits': o.fastWaits = Number(v); i++; break;
      case '--lambda-endpoint': o.lambdaEndpoint = v; i++; break;
      case '--iam-authorizer': o.iamAuthorizer = v; i++; break;
      case '--fast-timeouts': o.fastTimeouts = Number(v); i++; break;
      case '--person-waits': o.personWaits = Number(v); i++; break;
      case '--fast-pauses': o.fastPauses = v; i++; break;
      case '--history-limit': o.historyLimit = Number(v); i++; break;
      case '--event-rule': {
        let rule;
        try {
          rule = JSON.parse(v);
        } catch (e) {
          throw new RunnerError(`--event-rule: not JSON: ${e.message}`);
        }
        o.eventRules.push(rule);
        i++;
        break;
      }
      default: throw new RunnerError(`unknown argument ${argv[i]}`);
    }
  }
  if (o.fastWaits !== undefined && !(o.fastWaits >= 0)) throw new RunnerError('--fast-waits: milliseconds >= 0');
  if (o.fastPauses === undefined) o.fastPauses = o.fastWaits;
  else if (o.fastPauses === 'off') o.fastPauses = undefined;
  else if (!(Number(o.fastPauses) >= 0)) throw new RunnerError('--fast-pauses: milliseconds >= 0, or off');
  else o.fastPauses = Number(o.fastPauses);
  if (!Number.isInteger(o.port) || o.port < 0) throw new RunnerError('--port: a port number');
  if (o.fastTimeouts !== undefined && !(o.fastTimeouts > 0)) throw new RunnerError('--fast-timeouts: a factor > 0');
  if (o.personWaits !== undefined && !(o.personWaits > 0)) throw new RunnerError('--person-waits: a factor > 0');
  if (o.historyLimit !== undefined && !(Number.isInteger(o.historyLimit) && o.historyLimit >= 3)) {
    throw new RunnerError('--history-limit: an integer >= 3');
  }
  if (o.iamAuthorizer !== undefined && !URL.canParse(o.iamAuthorizer)) {
    throw new RunnerError(`--iam-authorizer: a URL (the strict moto's), not ${JSON.stringify(o.iamAuthorizer)}`);
  }
  for (const rule of o.eventRules) {
    if (rule === null || typeof rule !== 'object' || typeof rule.function !== 'string'
        || rule.pattern === null || typeof rule.pattern !== 'object' || Array.isArray(rule.pattern)) {
      throw new RunnerError(`event rule ${JSON.stringify(rule)}: {"pattern": {...}, "function": "NAME"}`);
    }
  }
  return o;
}

// ------------------------------------------------------------------ IAM
// Each request from one of okra's functions (the `app/NAME` of its user agent, as
// strict_moto.caller_of reads it) is authorized by the strict moto (`POST /_okra/iam/authorize`,
// tools/local-aws/iam_enforce.py) against that function's statements in template.yaml: the action
// `states:<Op>` on the resource the Service Authorization Reference ("Actions, resources, and
// condition keys for AWS Step Functions") names. A request without an app id (the tests' own
// clients, the CLI) is not checked. Refused: AWS's AccessDeniedException, the operation not run.
const ON_STATE_MACHINE = ['StartExecution', 'StartSyncExecution', 'ListExecutions', 'DescribeStateMachine', 'DeleteStateMachine'];
const ON_EXECUTION = ['DescribeExecution', 'StopExecution', 'GetExecutionHistory'];
const AUTHORIZE_TIMEOUT_MS = 2000;

function callerOf(headers) {
  for (const header of ['x-amz-user-agent', 'user-agent']) {
    const app = String(headers[header] ?? '').split(/\s+/).find((part) => part.startsWith('app/'));
    if (app) return app.slice('app/'.length);
  }
  return undefined;
}

// The resource `states:<op>` is authorized on; undefined for SendTask* with a token no execution
// minted: there is no state machine to name, and the operation answers InvalidToken or
// TaskDoesNotExist itself. SendTask*: the reference lists no resource, but AWS authorizes a
// token on its execution's state machine (its AccessDenied names `...:stateMachine:NAME`), which is
// what the template's AnswerWaits statements grant.
async function resourceOf(service, op, body) {
  if (ON_STATE_MACHINE.includes(op)) return body?.stateMachineArn ?? '*';
  if (ON_EXECUTION.includes(op)) return body?.executionArn ?? '*';
  if (op.startsWith('SendTask')) return service.taskStateMachine(body?.taskToken);
  return '*';
}

function authorizer(url, service) {
  const endpoint = new URL('/_okra/iam/authorize', url);
  return async (op, body, headers) => {
    const caller = callerOf(headers);
    if (caller === undefined || LOCAL_OPERATIONS.includes(op)) return;
    const action = `states:${op}`;
    const resource = await resourceOf(service, op, body);
    if (resource === undefined) return;
    let answer;
    try {
      const res = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ caller, action, resources: [resource], context: {} }),
        signal: AbortSignal.timeout(AUTHORIZE_TIMEOUT_MS),
      });
      answer = await res.json();
      if (!res.ok || typeof answer?.allowed !== 'boolean') throw new Error(`HTTP ${res.status} ${JSON.stringify(answer)}`);
    } catch (e) {
      throw new ApiError('InternalFailure', `sfn-local: the IAM authorizer ${endpoint} did not answer ${action} for ${caller}: ${e.message}`, 500);
    }
    if (answer.allowed) return;
    console.error(`sfn-local: DENY caller=${caller} action=${action} resource=${resource} reason=${answer.reason}`);
    // AWS's wording, as iam_enforce.denial_message writes it for moto's services.
    const on = resource === '*' ? '' : ` on resource: ${resource}`;
    const why = String(answer.reason).startsWith('explicit deny') ? 'with an explicit deny in an identity-based policy'
      : `because no identity-based policy allows the ${action} action`;
    throw new ApiError('AccessDeniedException', `User: arn:aws:sts::${service.account}:assumed-role/${answer.function}Role/${caller} is not authorized to perform: ${action}${on} ${why}`);
  };
}

async function main() {
  const o = options(process.argv.slice(2));
  const service = new Service(o);
  await service.library();
  const server = createServer(handler(service, { authorize: o.iamAuthorizer && authorizer(o.iamAuthorizer, service) }));
  await new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, resolveListen);
  });
  const { port } = server.address();
  process.stdout.write(JSON.stringify({ port }) + '\n');
  console.error(`sfn-local: listening on http://${o.host}:${port}` +
    (o.fastWaits !== undefined ? ` (every Wait state: ${o.fastWaits} ms)` : '') +
    (o.fastTimeouts !== undefined ? ` (Task timeouts x${o.fastTimeouts})` : '') +
    (o.fastPauses !== undefined ? ` (timed callbacks: ${o.fastPauses} ms)` : '') +
    (o.historyLimit !== undefined ? ` (history limit ${o.historyLimit})` : '') +
    ` rules=${o.eventRules.length} lambda=${o.lambdaEndpoint ?? '(unset)'} iam=${o.iamAuthorizer ?? '(off)'}`);
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(`sfn-local: ${e instanceof RunnerError ? e.message : e?.stack ?? e}\n`);
  process.exit(2);
});
