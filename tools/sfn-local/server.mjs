#!/usr/bin/env node
// okra sfn-local: a local AWS Step Functions service for the demo and the tests. It speaks the
// Step Functions JSON protocol (POST /, `X-Amz-Target: AWSStepFunctions.<Op>`,
// `Content-Type: application/x-amz-json-1.0`), so the functions' aws-sdk-sfn clients (pointed
// here by `AWS_ENDPOINT_URL_SFN`) and the `okra` CLI talk to it exactly as to AWS. Executions run
// in the background with aws-local-stepfunctions; every Task state invokes a REAL function
// binary through cargo lambda watch (tools/sfn-runner/lib.mjs, shared with run.mjs).
//
// Usage: <node 22> tools/sfn-local/server.mjs [--host 127.0.0.1] [--port N] [--fast-waits MS]
//                                             [--lambda-endpoint URL]
//   --port 0 (the default) picks a free port. The first stdout line is `{"port": N}`.
//   --fast-waits MS (or $OKRA_SFN_FAST_WAITS_MS): every Wait state of every execution waits MS
//     milliseconds instead of its Seconds/SecondsPath/Timestamp (the demo's shortened pauses:
//     a flag of the service, not a different state machine).
//   --lambda-endpoint (default $AWS_ENDPOINT_URL_LAMBDA): cargo lambda watch.
//
// Operations: CreateStateMachine (the definition with its ARNs already substituted),
// DescribeStateMachine, ListStateMachines, DeleteStateMachine, StartExecution (AWS's name
// idempotency: the same name and input while RUNNING returns the same execution; otherwise
// `ExecutionAlreadyExists`), DescribeExecution, ListExecutions, GetExecutionHistory (from the
// library's event log, mapped to AWS's event types), StopExecution. Errors are AWS's shape:
// HTTP 400 `{"__type": "ExecutionAlreadyExists", "message": ".."}`. State lives in memory.
// A Task's Lambda ARN runs the binary named like the function (`...:function:NAME`).

import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import {
  ACCOUNT_DEFAULT, REGION_DEFAULT, RunnerError, checkSupported, functionResolver, loadLibrary,
  makeInvoker, settle, taskHandlers, waitStates,
} from '../sfn-runner/lib.mjs';

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
  };
  // `--flag value` or `--flag=value`
  argv = argv.flatMap((a) => (a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a]));
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--host': o.host = v; i++; break;
      case '--port': o.port = Number(v); i++; break;
      case '--fast-waits': o.fastWaits = Number(v); i++; break;
      case '--lambda-endpoint': o.lambdaEndpoint = v; i++; break;
      default: throw new RunnerError(`unknown argument ${argv[i]}`);
    }
  }
  if (o.fastWaits !== undefined && !(o.fastWaits >= 0)) throw new RunnerError('--fast-waits: milliseconds >= 0');
  if (!Number.isInteger(o.port) || o.port < 0) throw new RunnerError('--port: a port number');
  return o;
}

// ------------------------------------------------------------------ service
class ApiError extends Error {
  constructor(type, message, status = 400) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

const NAME = /^[A-Za-z0-9_-]{1,80}$/;
const seconds = (ms) => ms / 1000;

class Service {
  constructor({ fastWaits, lambdaEndpoint, region = REGION_DEFAULT, account = ACCOUNT_DEFAULT }) {
    this.fastWaits = fastWaits;
    this.lambdaEndpoint = lambdaEndpoint;
    this.region = region;
    this.account = account;
    this.machines = new Map(); // arn -> machine
    this.executions = new Map(); // arn -> execution
    this.lib = undefined;
  }

  async library() {
    this.lib ??= await loadLibrary();
    return this.lib;
  }

  machine(arn) {
    const m = this.machines.get(arn);
    if (!m) throw new ApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${arn}'`);
    return m;
  }

  execution(arn) {
    const e = this.executions.get(arn);
    if (!e) throw new ApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
    return e;
  }

  async CreateStateMachine(req) {
    const { name, definition, roleArn } = req;
    if (typeof name !== 'string' || !NAME.test(name)) throw new ApiError('InvalidName', `Invalid Name: '${name}'`);
    if (typeof definition !== 'string') throw new ApiError('InvalidDefinition', 'definition: a JSON string');
    const arn = `arn:aws:states:${this.region}:${this.account}:stateMachine:${name}`;
    const existing = this.machines.get(arn);
    if (existing) {
      if (existing.definitionText === definition) return { stateMachineArn: arn, creationDate: seconds(existing.created) };
      throw new ApiError('StateMachineAlreadyExists', `State Machine Already Exists: '${arn}'`);
    }
    let parsed;
    try {
      parsed = JSON.parse(definition);
      checkSupported(parsed);
    } catch (e) {
      throw new ApiError('InvalidDefinition', `Invalid State Machine Definition: ${e.message}`);
    }
    if (/\$\{[^}]*\}/.test(definition)) {
      throw new ApiError('InvalidDefinition', 'Invalid State Machine Definition: unsubstituted ${...} (fill the DefinitionSubstitutions first)');
    }
    const { StateMachine } = await this.library();
    let sm;
    try {
      sm = new StateMachine(parsed, { validationOptions: { checkPaths: true, checkArn: true } });
    } catch (e) {
      throw new ApiError('InvalidDefinition', `Invalid State Machine Definition: ${e.message}`);
    }
    const created = Date.now();
    this.machines.set(arn, {
      arn, name, definitionText: definition, definition: parsed, roleArn: roleArn ?? '', sm, created,
      type: req.type ?? 'STANDARD',
    });
    return { stateMachineArn: arn, creationDate: seconds(created) };
  }

  DescribeStateMachine({ stateMachineArn }) {
    const m = this.machine(stateMachineArn);
    return {
      stateMachineArn: m.arn, name: m.name, status: 'ACTIVE', definition: m.definitionText,
      roleArn: m.roleArn, type: m.type, creationDate: seconds(m.created),
    };
  }

  ListStateMachines() {
    return {
      stateMachines: [...this.machines.values()].map((m) => ({
        stateMachineArn: m.arn, name: m.name, type: m.type, creationDate: seconds(m.created),
      })),
    };
  }

  DeleteStateMachine({ stateMachineArn }) {
    this.machines.delete(stateMachineArn);
    return {};
  }

  async StartExecution(req) {
    const m = this.machine(req.stateMachineArn);
    const name = req.name ?? randomUUID();
    if (!NAME.test(name)) throw new ApiError('InvalidName', `Invalid Name: '${name}'`);
    const input = req.input ?? '{}';
    let parsedInput;
    try {
      parsedInput = JSON.parse(input);
    } catch (e) {
      throw new ApiError('InvalidExecutionInput', `Invalid execution input: ${e.message}`);
    }
    const arn = `arn:aws:states:${this.region}:${this.account}:execution:${m.name}:${name}`;
    const existing = this.executions.get(arn);
    if (existing) {
      if (existing.status === 'RUNNING' && existing.input === input) {
        return { executionArn: arn, startDate: seconds(existing.started) };
      }
      throw new ApiError('ExecutionAlreadyExists', `Execution Already Exists: '${arn}'`);
    }
    const started = Date.now();
    const controller = new AbortController();
    const invoke = makeInvoker(this.lambdaEndpoint, controller.signal);
    const overrides = {
      taskResourceLocalHandlers: taskHandlers(m.definition, functionResolver(), invoke),
      waitTimeOverrides: {},
    };
    if (this.fastWaits !== undefined) {
      for (const w of waitStates(m.definition)) overrides.waitTimeOverrides[w] = this.fastWaits;
    }
    const context = {
      Execution: {
        Id: arn, Name: name, Input: parsedInput, StartTime: new Date(started).toISOString(),
        RoleArn: m.roleArn,
      },
      StateMachine: { Id: m.arn, Name: m.name },
    };
    const run = m.sm.run(parsedInput, { overrides, context });
    const exec = {
      arn, name, machineArn: m.arn, input, status: 'RUNNING', started, stopped: undefined,
      output: undefined, error: undefined, cause: undefined, events: [], run, controller,
      roleArn: m.roleArn,
    };
    this.executions.set(arn, exec);
    (async () => {
      for await (const event of run.eventLogs) exec.events.push(event);
    })().catch(() => {});
    const lib = await this.library();
    settle(run, lib, 'stopped').then((r) => {
      if (exec.status !== 'RUNNING') return; // stopped meanwhile
      exec.status = r.status;
      exec.output = r.output;
      exec.error = r.error ?? undefined;
      exec.cause = r.cause ?? undefined;
      exec.stopped = Date.now();
      controller.abort();
      console.error(`sfn-local: ${name} ${r.status}${r.error ? ` (${r.error})` : ''}`);
    }, (e) => {
      exec.status = 'FAILED';
      exec.error = 'States.Runtime';
      exec.cause = String(e?.message ?? e);
      exec.stopped = Date.now();
    });
    console.error(`sfn-local: started ${name}`);
    return { executionArn: arn, startDate: seconds(started) };
  }

  describe(e) {
    const out = {
      executionArn: e.arn, stateMachineArn: e.machineArn, name: e.name, status: e.status,
      startDate: seconds(e.started), input: e.input,
    };
    if (e.stopped !== undefined) out.stopDate = seconds(e.stopped);
    if (e.status === 'SUCCEEDED') out.output = JSON.stringify(e.output ?? null);
    if (e.error) out.error = e.error;
    if (e.cause) out.cause = e.cause;
    return out;
  }

  DescribeExecution({ executionArn }) {
    return this.describe(this.execution(executionArn));
  }

  ListExecutions({ stateMachineArn, statusFilter, maxResults }) {
    this.machine(stateMachineArn);
    let list = [...this.executions.values()]
      .filter((e) => e.machineArn === stateMachineArn && (!statusFilter || e.status === statusFilter))
      .sort((a, b) => b.started - a.started);
    if (maxResults) list = list.slice(0, maxResults);
    return {
      executions: list.map((e) => {
        const d = this.describe(e);
        delete d.input; delete d.output; delete d.error; delete d.cause;
        return d;
      }),
    };
  }

  GetExecutionHistory({ executionArn, reverseOrder }) {
    const e = this.execution(executionArn);
    const events = history(e);
    return { events: reverseOrder ? events.reverse() : events };
  }

  StopExecution({ executionArn, error, cause }) {
    const e = this.execution(executionArn);
    if (e.status === 'RUNNING') {
      e.status = 'ABORTED';
      e.stopped = Date.now();
      e.error = error;
      e.cause = cause;
      e.run.abort();
      e.controller.abort();
    }
    return { stopDate: seconds(e.stopped ?? Date.now()) };
  }
}

const TYPE_PREFIX = { Task: 'Task', Pass: 'Pass', Choice: 'Choice', Wait: 'Wait', Succeed: 'Succeed', Fail: 'Fail', Map: 'Map', Parallel: 'Parallel' };
const json = (v) => (v === undefined ? undefined : JSON.stringify(v));

// aws-local-stepfunctions' event log in AWS's GetExecutionHistory shapes (the common subset).
function history(e) {
  const out = [];
  const push = (timestamp, type, details = {}) => {
    const id = out.length + 1;
    out.push({ id, previousEventId: id - 1, timestamp: seconds(timestamp), type, ...details });
  };
  for (const ev of e.events) {
    const t = ev.timestamp ?? e.started;
    const st = ev.state ?? {};
    const prefix = TYPE_PREFIX[st.type] ?? 'Pass';
    switch (ev.type) {
      case 'ExecutionStarted':
        push(t, 'ExecutionStarted', { executionStartedEventDetails: { input: e.input, roleArn: e.roleArn } });
        break;
      case 'ExecutionSucceeded':
        push(t, 'ExecutionSucceeded', { executionSucceededEventDetails: { output: json(ev.output ?? e.output ?? null) } });
        break;
      case 'ExecutionFailed':
        push(t, 'ExecutionFailed', { executionFailedEventDetails: { error: ev.Error ?? e.error, cause: ev.Cause ?? e.cause } });
        break;
      case 'ExecutionAborted':
        push(t, 'ExecutionAborted', { executionAbortedEventDetails: {} });
        break;
      case 'ExecutionTimeout':
        push(t, 'ExecutionTimedOut', { executionTimedOutEventDetails: {} });
        break;
      case 'StateEntered':
        push(t, `${prefix}StateEntered`, { stateEnteredEventDetails: { name: st.name, input: json(st.input) } });
        break;
      case 'StateExited':
        push(t, `${prefix}StateExited`, { stateExitedEventDetails: { name: st.name, output: json(st.output) } });
        break;
      case 'StateFailed':
        if (st.type === 'Task') {
          push(t, 'TaskFailed', { taskFailedEventDetails: { resourceType: 'lambda', resource: 'invoke', error: ev.Error, cause: typeof ev.Cause === 'string' ? ev.Cause : json(ev.Cause) } });
        }
        break;
      default:
        break;
    }
  }
  if (e.status !== 'RUNNING' && !out.some((x) => x.type.startsWith('Execution') && x.type !== 'ExecutionStarted')) {
    const type = { SUCCEEDED: 'ExecutionSucceeded', FAILED: 'ExecutionFailed', ABORTED: 'ExecutionAborted', TIMED_OUT: 'ExecutionTimedOut' }[e.status];
    if (type === 'ExecutionFailed') push(e.stopped, type, { executionFailedEventDetails: { error: e.error, cause: e.cause } });
    else if (type === 'ExecutionSucceeded') push(e.stopped, type, { executionSucceededEventDetails: { output: json(e.output ?? null) } });
    else if (type) push(e.stopped, type, {});
  }
  return out;
}

// ------------------------------------------------------------------ HTTP
const OPERATIONS = ['CreateStateMachine', 'DescribeStateMachine', 'ListStateMachines', 'DeleteStateMachine',
  'StartExecution', 'DescribeExecution', 'ListExecutions', 'GetExecutionHistory', 'StopExecution'];

function serve(service, { host, port }) {
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const reply = (status, body) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': randomUUID() });
        res.end(JSON.stringify(body));
      };
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('okra sfn-local\n');
        return;
      }
      const target = String(req.headers['x-amz-target'] ?? '');
      const op = target.startsWith('AWSStepFunctions.') ? target.slice('AWSStepFunctions.'.length) : '';
      try {
        if (!OPERATIONS.includes(op)) throw new ApiError('UnknownOperationException', `sfn-local does not implement ${target || '(no X-Amz-Target)'}`);
        const text = Buffer.concat(chunks).toString('utf8');
        let body;
        try {
          body = text.trim() === '' ? {} : JSON.parse(text);
        } catch {
          throw new ApiError('SerializationException', 'the body is not JSON');
        }
        reply(200, await service[op](body));
      } catch (e) {
        if (e instanceof ApiError) reply(e.status, { __type: e.type, message: e.message });
        else reply(500, { __type: 'InternalFailure', message: String(e?.stack ?? e) });
      }
    });
  });
  return new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolveListen(server));
  });
}

async function main() {
  const o = options(process.argv.slice(2));
  const service = new Service(o);
  await service.library();
  const server = await serve(service, o);
  const { port } = server.address();
  process.stdout.write(JSON.stringify({ port }) + '\n');
  console.error(`sfn-local: listening on http://${o.host}:${port}` +
    (o.fastWaits !== undefined ? ` (every Wait state: ${o.fastWaits} ms)` : '') +
    ` lambda=${o.lambdaEndpoint ?? '(unset)'}`);
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(`sfn-local: ${e instanceof RunnerError ? e.message : e?.stack ?? e}\n`);
  process.exit(2);
});
