// okra's local Step Functions service: ONE implementation of executions, used by
// tools/sfn-local/server.mjs (over HTTP, the Step Functions JSON protocol) and by
// tools/sfn-runner/run.mjs (one execution, in-process). Executions run on aws-local-stepfunctions
// (instrumented, see lib.mjs); this file adds what AWS does around the interpreter and okra relies
// on:
// - the execution history in AWS's event model (GetExecutionHistory), with the 25,000-event quota;
// - the 256 KiB payload quota (States.DataLimitExceeded);
// - execution names (unique for 90 days; same name + same input while RUNNING = same execution);
// - Task resources: Lambda function ARNs, `arn:aws:states:::lambda:invoke` and
//   `arn:aws:states:::lambda:invoke.waitForTaskToken` (task tokens, SendTaskSuccess/Failure/
//   Heartbeat, TimeoutSeconds, HeartbeatSeconds);
// - StopExecution;
// - "Step Functions Execution Status Change" events delivered to rules (EventBridge-style) that
//   invoke function binaries through the Lambda endpoint.
// Sources for each rule are cited where it is implemented.

import { randomBytes, randomUUID } from 'node:crypto';
import {
  ACCOUNT_DEFAULT, HISTORY_LIMIT_EVENTS, LAMBDA_CALLBACK, LAMBDA_INVOKE, LambdaError, PAYLOAD_LIMIT_BYTES,
  REGION_DEFAULT, RunnerError, allStates, als, checkSupported, eventMatches, functionResolver, loadLibrary,
  makeInvoker, payloadBytes, stringOrJson, uncatchable, waitStates,
} from './lib.mjs';

export class ApiError extends Error {
  constructor(type, message, status = 400) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

const NAME = /^[A-Za-z0-9_-]{1,80}$/;
const seconds = (ms) => ms / 1000;
const json = (v) => (v === undefined ? undefined : JSON.stringify(v));
const NINETY_DAYS_MS = 90 * 24 * 3600 * 1000;
// Task tokens this service mints: a fixed prefix and 64 base64url characters. Anything else is
// "not valid" (InvalidToken); a well-formed token we never minted "does not exist".
const TOKEN = /^okra-task-token-v1\.[A-Za-z0-9_-]{64}$/;
// `$$.Task.Token` as the library sees it; replaced by a fresh token in each callback attempt.
const TOKEN_SENTINEL = `okra-task-token-sentinel-${randomUUID()}`;
// Node's timers overflow above 2^31-1 ms; the library's own Task timeout (default 60 s) is
// disabled by giving every Task this TimeoutSeconds in the copy it runs (ours are enforced here).
const LIBRARY_TASK_TIMEOUT_S = 2_000_000;
// The longest time-out armed: a longer one (a wait for a person's year) would fire at once, as
// Node's setTimeout does above 2^31-1 ms; it is not armed (no run lasts 24 days).
const MAX_TIMER_MS = 2 ** 31 - 1;

export const OPERATIONS = ['CreateStateMachine', 'DescribeStateMachine', 'ListStateMachines', 'DeleteStateMachine',
  'StartExecution', 'DescribeExecution', 'ListExecutions', 'GetExecutionHistory', 'StopExecution',
  'SendTaskSuccess', 'SendTaskFailure', 'SendTaskHeartbeat'];
// Not AWS: how run.mjs (one execution in its own process) has this service pass SendTask* calls
// for its tokens on to it (`X-Amz-Target: AWSStepFunctions.OkraLocalForwardTask`,
// `{"taskToken", "endpoint"}`), and how this service asks a run.mjs which state machine one of
// its tokens belongs to (`OkraLocalTaskStateMachine`, `{"taskToken"}`; for IAM).
export const LOCAL_OPERATIONS = ['OkraLocalForwardTask', 'OkraLocalTaskStateMachine'];

function replaceDeep(value, from, to) {
  if (value === from) return to;
  if (Array.isArray(value)) return value.map((v) => replaceDeep(v, from, to));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceDeep(v, from, to)]));
  }
  return value;
}

// The copy of a definition the library runs: every Task's TimeoutSeconds raised (see above).
function libraryDefinition(definition) {
  const copy = structuredClone(definition);
  for (const [, state] of allStates(copy)) {
    if (state.Type === 'Task') {
      state.TimeoutSeconds = LIBRARY_TASK_TIMEOUT_S;
      delete state.TimeoutSecondsPath;
      delete state.HeartbeatSeconds;
      delete state.HeartbeatSecondsPath;
    }
  }
  return copy;
}

export class Service {
  // fastWaits: ms for every Wait state (undefined: as written). fastPauses: ms for a callback
  // task's time-out given by TimeoutSecondsPath (okra's timed waits; undefined: as written).
  // fastTimeouts: factor applied to Task TimeoutSeconds/HeartbeatSeconds (undefined = 1).
  // personWaits: factor applied to the time-out of a wait for a person (a callback whose payload
  // says `"wait": "person"` with its `seconds`: a deadline, not one of the timed waits fastPauses
  // shortens; undefined = 1).
  // historyLimit: events (25,000).
  // eventRules: [{pattern, function}].
  constructor({
    fastWaits, fastPauses, fastTimeouts, personWaits, lambdaEndpoint, historyLimit, eventRules = [],
    region = REGION_DEFAULT, account = ACCOUNT_DEFAULT, onTaskToken,
  } = {}) {
    this.onTaskToken = onTaskToken; // async (token) => void, before a callback's Lambda runs
    this.forwards = new Map(); // token -> endpoint of the run.mjs that owns it
    this.fastWaits = fastWaits;
    this.fastPauses = fastPauses;
    this.fastTimeouts = fastTimeouts ?? 1;
    this.personWaits = personWaits ?? 1;
    this.lambdaEndpoint = lambdaEndpoint;
    this.historyLimit = historyLimit ?? HISTORY_LIMIT_EVENTS;
    this.eventRules = eventRules;
    for (const rule of eventRules) eventMatches(rule.pattern, {}); // validates the pattern
    this.region = region;
    this.account = account;
    this.machines = new Map(); // arn -> machine
    this.executions = new Map(); // arn -> Execution
    this.tokens = new Map(); // token -> task record
    this.deliveries = new Set(); // EventBridge deliveries in flight
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
      // Validated as written; run as the library copy (no library-side Task time-outs).
      new StateMachine(parsed, { validationOptions: { checkPaths: true, checkArn: true } });
      sm = new StateMachine(libraryDefinition(parsed), { validationOptions: { noValidate: true } });
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

  // StartExecution (API reference): `name` is unique for the account, region and state machine
  // for 90 days ("Limits Related to State Machine Executions"), closed executions included; the
  // same name and input while the execution is RUNNING returns it again (idempotency);
  // otherwise ExecutionAlreadyExists. `input` has "Length Constraints: Maximum length of
  // 262144" (bytes, UTF-8): longer is refused like any constraint violation, ValidationException.
  // `local` (run.mjs only): {functions, substitutions, waitTimeOverrides, retryIntervalOverrides,
  // context}.
  async StartExecution(req, local = {}) {
    const m = this.machine(req.stateMachineArn);
    const name = req.name ?? randomUUID();
    if (typeof name !== 'string' || !NAME.test(name)) throw new ApiError('InvalidName', `Invalid Name: '${name}'`);
    const input = req.input ?? '{}';
    if (typeof input !== 'string') throw new ApiError('SerializationException', 'input: a JSON string');
    if (payloadBytes(input) > PAYLOAD_LIMIT_BYTES) {
      throw new ApiError('ValidationException', `1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have length less than or equal to ${PAYLOAD_LIMIT_BYTES}`);
    }
    let parsedInput;
    try {
      parsedInput = JSON.parse(input);
    } catch (e) {
      throw new ApiError('InvalidExecutionInput', `Invalid State Machine Execution Input: '${e.message}'`);
    }
    const arn = `arn:aws:states:${this.region}:${this.account}:execution:${m.name}:${name}`;
    const existing = this.executions.get(arn);
    if (existing && Date.now() - existing.started < NINETY_DAYS_MS) {
      if (existing.status === 'RUNNING' && existing.input === input) {
        return { executionArn: arn, startDate: seconds(existing.started) };
      }
      throw new ApiError('ExecutionAlreadyExists', `Execution Already Exists: '${arn}'`);
    }
    const lib = await this.library();
    const exec = new Execution(this, m, { arn, name, input, parsedInput }, local, lib);
    this.executions.set(arn, exec);
    exec.start();
    return { executionArn: arn, startDate: seconds(exec.started) };
  }

  describe(e) {
    const out = {
      executionArn: e.arn, stateMachineArn: e.machine.arn, name: e.name, status: e.status,
      startDate: seconds(e.started), input: e.input, inputDetails: { included: true },
    };
    if (e.stopped !== undefined) out.stopDate = seconds(e.stopped);
    if (e.status === 'SUCCEEDED') {
      out.output = json(e.output ?? null);
      out.outputDetails = { included: true };
    }
    if (e.error !== undefined && e.error !== null) out.error = e.error;
    if (e.cause !== undefined && e.cause !== null) out.cause = e.cause;
    return out;
  }

  DescribeExecution({ executionArn }) {
    return this.describe(this.execution(executionArn));
  }

  ListExecutions({ stateMachineArn, statusFilter, maxResults }) {
    this.machine(stateMachineArn);
    let list = [...this.executions.values()]
      .filter((e) => e.machine.arn === stateMachineArn && (!statusFilter || e.status === statusFilter))
      .sort((a, b) => b.started - a.started);
    if (maxResults) list = list.slice(0, maxResults);
    return {
      executions: list.map((e) => {
        const d = this.describe(e);
        for (const k of ['input', 'inputDetails', 'output', 'outputDetails', 'error', 'cause']) delete d[k];
        return d;
      }),
    };
  }

  // GetExecutionHistory (API reference): maxResults (default 100, at most 1000), nextToken,
  // reverseOrder, includeExecutionData (default true).
  GetExecutionHistory({ executionArn, maxResults, nextToken, reverseOrder, includeExecutionData }) {
    const e = this.execution(executionArn);
    const all = reverseOrder ? [...e.history].reverse() : e.history;
    const limit = maxResults === undefined || maxResults === 0 ? 100 : Number(maxResults);
    if (!Number.isInteger(limit) || limit < 0 || limit > 1000) {
      throw new ApiError('ValidationException', 'maxResults: an integer from 0 to 1000');
    }
    let offset = 0;
    if (nextToken !== undefined && nextToken !== null) {
      const m = /^okra-history\.(\d+)\.(forward|reverse)\.(.+)$/.exec(Buffer.from(String(nextToken), 'base64url').toString());
      if (!m || m[3] !== executionArn || (m[2] === 'reverse') !== Boolean(reverseOrder)) {
        throw new ApiError('InvalidToken', `Invalid Token: '${nextToken}'`);
      }
      offset = Number(m[1]);
    }
    let events = all.slice(offset, offset + limit);
    if (includeExecutionData === false) {
      events = events.map((ev) => JSON.parse(JSON.stringify(ev, (k, v) => (k === 'input' || k === 'output' ? undefined : v))));
    }
    const out = { events };
    if (offset + limit < all.length) {
      out.nextToken = Buffer.from(`okra-history.${offset + limit}.${reverseOrder ? 'reverse' : 'forward'}.${executionArn}`).toString('base64url');
    }
    return out;
  }

  // StopExecution (API reference): a RUNNING execution becomes ABORTED; stopping a closed one
  // changes nothing.
  StopExecution({ executionArn, error, cause }) {
    const e = this.execution(executionArn);
    if (e.status === 'RUNNING') e.close('ABORTED', { error: error ?? null, cause: cause ?? null });
    return { stopDate: seconds(e.stopped ?? Date.now()) };
  }

  // SendTaskSuccess/SendTaskFailure/SendTaskHeartbeat (API reference): InvalidToken "The
  // provided token is not valid."; TaskDoesNotExist (the token names no task); TaskTimedOut "The
  // task token has either expired or the task associated with the token has already been
  // closed." SendTaskSuccess: InvalidOutput "The provided JSON output data is not valid.";
  // `output` has "Maximum length of 262144" (ValidationException beyond).
  task(taskToken) {
    if (typeof taskToken !== 'string' || taskToken.length < 1 || taskToken.length > 2048) {
      throw new ApiError('ValidationException', "1 validation error detected: Value at 'taskToken' failed to satisfy constraint: Member must have length between 1 and 2048");
    }
    if (!TOKEN.test(taskToken)) throw new ApiError('InvalidToken', 'Invalid Token: the provided token is not valid');
    const t = this.tokens.get(taskToken);
    if (!t) throw new ApiError('TaskDoesNotExist', 'Task Does Not Exist');
    if (t.closed) throw new ApiError('TaskTimedOut', 'Task Timed Out: the task associated with the token has already been closed');
    return t;
  }

  OkraLocalForwardTask({ taskToken, endpoint }) {
    if (typeof taskToken !== 'string' || !TOKEN.test(taskToken) || typeof endpoint !== 'string') {
      throw new ApiError('ValidationException', 'OkraLocalForwardTask: {"taskToken": <a token>, "endpoint": "http://..."}');
    }
    this.forwards.set(taskToken, endpoint);
    return {};
  }

  OkraLocalTaskStateMachine({ taskToken }) {
    return { stateMachineArn: this.tokens.get(taskToken)?.stateMachineArn ?? null };
  }

  // The ARN of the state machine whose execution minted a task token (IAM authorizes SendTask*
  // on it), asking the run.mjs that owns a forwarded token; undefined for a token no execution
  // minted (or whose runner is gone).
  async taskStateMachine(taskToken) {
    if (this.tokens.has(taskToken)) return this.tokens.get(taskToken).stateMachineArn;
    if (!this.forwards.has(taskToken)) return undefined;
    try {
      return (await this.forward('OkraLocalTaskStateMachine', { taskToken })).stateMachineArn ?? undefined;
    } catch {
      return undefined;
    }
  }

  // A token minted by a run.mjs process: its SendTask* call is passed on, its answer passed back;
  // a runner that is gone has closed the task (TaskTimedOut).
  async forward(op, body) {
    const endpoint = this.forwards.get(body.taskToken);
    let res;
    let text;
    try {
      res = await fetch(endpoint, {
        method: 'POST',
        headers: { 'x-amz-target': `AWSStepFunctions.${op}`, 'content-type': 'application/x-amz-json-1.0' },
        body: JSON.stringify(body),
      });
      text = await res.text();
    } catch {
      throw new ApiError('TaskTimedOut', 'Task Timed Out: the execution that owned the token has ended');
    }
    let out;
    try {
      out = JSON.parse(text);
    } catch {
      throw new ApiError('InternalFailure', `forwarding ${op}: ${text.slice(0, 200)}`, 500);
    }
    if (res.status === 200) return out;
    throw new ApiError(out.__type ?? 'InternalFailure', out.message ?? text, res.status);
  }

  async SendTaskSuccess({ taskToken, output }) {
    if (this.forwards.has(taskToken)) return this.forward('SendTaskSuccess', { taskToken, output });
    if (typeof output !== 'string') throw new ApiError('ValidationException', "1 validation error detected: Value null at 'output' failed to satisfy constraint: Member must not be null");
    if (payloadBytes(output) > PAYLOAD_LIMIT_BYTES) {
      throw new ApiError('ValidationException', `1 validation error detected: Value at 'output' failed to satisfy constraint: Member must have length less than or equal to ${PAYLOAD_LIMIT_BYTES}`);
    }
    const t = this.task(taskToken);
    let parsed;
    try {
      parsed = JSON.parse(output);
    } catch (e) {
      throw new ApiError('InvalidOutput', `Invalid Output: ${e.message}`);
    }
    t.succeed(parsed);
    return {};
  }

  async SendTaskFailure({ taskToken, error, cause }) {
    if (this.forwards.has(taskToken)) return this.forward('SendTaskFailure', { taskToken, error, cause });
    const t = this.task(taskToken);
    t.fail(error ?? '', cause ?? '');
    return {};
  }

  async SendTaskHeartbeat({ taskToken }) {
    if (this.forwards.has(taskToken)) return this.forward('SendTaskHeartbeat', { taskToken });
    this.task(taskToken).heartbeat();
    return {};
  }

  // ------------------------------------------------------------------ status change events
  // "Step Functions Execution Status Change" (Step Functions developer guide, "Automating Step
  // Functions event delivery with EventBridge"; EventBridge reference "AWS Step Functions events"):
  // startDate/stopDate in epoch milliseconds, stopDate/output/outputDetails/error/cause null
  // when there is none.
  statusChangeEvent(e) {
    return {
      version: '0',
      id: randomUUID(),
      'detail-type': 'Step Functions Execution Status Change',
      source: 'aws.states',
      account: this.account,
      time: new Date(e.stopped ?? e.started).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      region: this.region,
      resources: [e.arn],
      detail: {
        executionArn: e.arn,
        stateMachineArn: e.machine.arn,
        name: e.name,
        status: e.status,
        startDate: e.started,
        stopDate: e.stopped ?? null,
        input: e.input,
        output: e.status === 'SUCCEEDED' ? json(e.output ?? null) : null,
        inputDetails: { included: true },
        outputDetails: e.status === 'SUCCEEDED' ? { included: true } : null,
        error: e.error ?? null,
        cause: e.cause ?? null,
      },
    };
  }

  // Delivered as EventBridge delivers to a Lambda target: asynchronously, retried on failure
  // (here: 3 attempts, 0.2 s and 1 s apart; every attempt is logged). Standard workflows only
  // ("Express Workflows do not emit events to EventBridge").
  publish(event, machine) {
    if (machine.type !== 'STANDARD') return;
    for (const rule of this.eventRules) {
      if (!eventMatches(rule.pattern, event)) continue;
      const delivery = (async () => {
        const invoke = makeInvoker(this.lambdaEndpoint);
        const delays = [0, 200, 1000];
        for (const [i, delay] of delays.entries()) {
          if (delay) await new Promise((r) => setTimeout(r, delay));
          try {
            await invoke(rule.function, event);
            console.error(`sfn-local: event ${event.detail.status} of ${event.detail.name} delivered to ${rule.function}`);
            return;
          } catch (err) {
            console.error(`sfn-local: event ${event.detail.status} of ${event.detail.name} to ${rule.function}: attempt ${i + 1} failed: ${err.name}: ${err.message}`);
          }
        }
        console.error(`sfn-local: event ${event.detail.status} of ${event.detail.name} to ${rule.function}: given up`);
      })();
      this.deliveries.add(delivery);
      delivery.finally(() => this.deliveries.delete(delivery));
    }
  }
}

// ---------------------------------------------------------------------- one execution
class Execution {
  constructor(service, machine, { arn, name, input, parsedInput }, local, lib) {
    this.service = service;
    this.machine = machine;
    this.lib = lib;
    this.arn = arn;
    this.name = name;
    this.input = input;
    this.parsedInput = parsedInput;
    this.local = local;
    this.status = 'RUNNING';
    this.started = Date.now();
    this.stopped = undefined;
    this.output = undefined;
    this.error = undefined;
    this.cause = undefined;
    this.history = []; // AWS-shaped events
    this.libEvents = []; // the library's own event log (run.mjs reports it as `events`)
    this.controller = new AbortController();
    this.openTasks = new Set();
    this.done = new Promise((r) => { this.resolveDone = r; });
  }

  // ---- history. Events are appended in the order they happen. When the next event would leave
  // no room for the closing one, the execution fails: the Quotas page ("Maximum execution
  // history size: 25,000 events. If the execution history reaches this quota the execution will
  // fail.") names no error for it, so this uses States.Runtime (an error no Catch/States.ALL
  // can catch; "Handling errors in Step Functions workflows").
  record(type, details = {}) {
    if (this.status !== 'RUNNING') return;
    const id = this.history.length + 1;
    this.history.push({ timestamp: seconds(Date.now()), type, id, previousEventId: id - 1, ...details });
    if (this.history.length >= this.service.historyLimit - 1) {
      this.close('FAILED', {
        error: 'States.Runtime',
        cause: `The execution reached the maximum number of history events (${this.service.historyLimit}).`,
      });
    }
  }

  // A payload over 256 KiB fails the execution with States.DataLimitExceeded, which no Catch
  // (States.ALL included) catches ("Handling errors": "States.DataLimitExceeded ... is a terminal
  // error that can't be caught by the States.ALL error type"). Returns false when it did.
  checkPayload(value, what) {
    if (payloadBytes(value) <= PAYLOAD_LIMIT_BYTES) return true;
    this.close('FAILED', {
      error: 'States.DataLimitExceeded',
      cause: `The ${what} has a size exceeding the maximum number of bytes service limit (${PAYLOAD_LIMIT_BYTES}).`,
    });
    return false;
  }

  // A Wait state's SecondsPath/TimestampPath must point to a value in the state input, even when
  // --fast-waits shortens the wait (AWS fails the execution with States.Runtime otherwise; ASL
  // spec, Wait state: SecondsPath "a non-negative integer", TimestampPath an ISO-8601 timestamp).
  checkWaitPath(name, input) {
    const def = [...allStates(this.machine.definition)].find(([n]) => n === name)?.[1];
    const path = def?.SecondsPath ?? def?.TimestampPath;
    if (path === undefined) return true;
    let v;
    try {
      v = this.lib.__internals.jsonPathQuery(path, input, {}, {});
    } catch (e) {
      v = undefined;
    }
    const ok = def.SecondsPath !== undefined ? Number.isInteger(v) && v >= 0
      : typeof v === 'string' && !Number.isNaN(Date.parse(v));
    if (ok) return true;
    this.close('FAILED', { error: 'States.Runtime', cause: `An error occurred while executing the state '${name}'. The ${def.SecondsPath !== undefined ? 'SecondsPath' : 'TimestampPath'} parameter does not reference a valid value: ${path} (${JSON.stringify(v)})` });
    return false;
  }

  // Every library event, synchronously (lib.mjs's instrumentation).
  onLibraryEvent(ev, store) {
    const nested = store.nested;
    const st = ev.state ?? {};
    switch (ev.type) {
      case 'ExecutionStarted':
        if (nested?.kind === 'map') this.record('MapIterationStarted', { mapIterationStartedEventDetails: { name: nested.name, index: nested.index } });
        break;
      case 'ExecutionSucceeded':
        if (nested?.kind === 'map') this.record('MapIterationSucceeded', { mapIterationSucceededEventDetails: { name: nested.name, index: nested.index } });
        break;
      case 'ExecutionFailed':
        if (nested?.kind === 'map') this.record('MapIterationFailed', { mapIterationFailedEventDetails: { name: nested.name, index: nested.index } });
        break;
      case 'ExecutionAborted':
        if (nested?.kind === 'map') this.record('MapIterationAborted', { mapIterationAbortedEventDetails: { name: nested.name, index: nested.index } });
        break;
      case 'StateEntered':
        if (store.inputs) store.inputs[st.name] = st.input; // TimeoutSecondsPath reads it
        if (!this.checkPayload(st.input, `input of state '${st.name}'`)) return;
        if (st.type === 'Wait' && !this.checkWaitPath(st.name, st.input)) return;
        this.record(`${st.type}StateEntered`, { stateEnteredEventDetails: { name: st.name, input: json(st.input), inputDetails: { truncated: false } } });
        break;
      case 'StateExited':
        if (!this.checkPayload(st.output, `output of state '${st.name}'`)) return;
        this.record(`${st.type}StateExited`, { stateExitedEventDetails: { name: st.name, output: json(st.output), outputDetails: { truncated: false } } });
        break;
      default:
        break; // StateFailed/Retried/Caught: Task events come from the task handlers
    }
  }

  start() {
    const m = this.machine;
    const { local } = this;
    const service = this.service;
    const overrides = {
      taskResourceLocalHandlers: this.taskHandlers(functionResolver(local.substitutions, local.functions)),
      waitTimeOverrides: { ...(local.waitTimeOverrides ?? {}) },
      retryIntervalOverrides: local.retryIntervalOverrides ?? {},
    };
    if (service.fastWaits !== undefined) {
      for (const w of waitStates(m.definition)) overrides.waitTimeOverrides[w] = service.fastWaits;
    }
    const userContext = local.context ?? {};
    const context = {
      ...userContext,
      Execution: {
        Id: this.arn, Name: this.name, Input: this.parsedInput, StartTime: new Date(this.started).toISOString(),
        RoleArn: m.roleArn, ...(userContext.Execution ?? {}),
      },
      StateMachine: { Id: m.arn, Name: m.name, ...(userContext.StateMachine ?? {}) },
      Task: { Token: TOKEN_SENTINEL },
    };
    this.record('ExecutionStarted', {
      executionStartedEventDetails: { input: this.input, inputDetails: { truncated: false }, roleArn: m.roleArn },
    });
    // The status change to RUNNING is an event too (the developer guide's examples start with it).
    this.service.publish(this.service.statusChangeEvent(this), m);
    const store = {
      inputs: {},
      sink: (ev, s) => this.onLibraryEvent(ev, s),
      emit: (s, type, details) => this.record(type, details),
    };
    als.run(store, () => {
      this.run = m.sm.run(this.parsedInput, { overrides, context });
    });
    this.libEventsDone = (async () => {
      for await (const ev of this.run.eventLogs) this.libEvents.push(ev);
    })().catch(() => {});
    if (this.status !== 'RUNNING') this.run.abort(); // failed while starting (a limit)
    this.settle();
    console.error(`sfn-local: started ${this.name}`);
  }

  async settle() {
    const { ExecutionError, ExecutionTimeoutError, ExecutionAbortedError } = this.lib;
    try {
      const output = await this.run.result;
      this.close('SUCCEEDED', { output });
    } catch (e) {
      if (e instanceof ExecutionTimeoutError) {
        this.close('TIMED_OUT', { error: 'States.Timeout', cause: 'The execution timed out (TimeoutSeconds).' });
      } else if (e instanceof ExecutionAbortedError) {
        this.close('ABORTED', { error: null, cause: null }); // no-op when we closed it ourselves
      } else if (e instanceof ExecutionError) {
        const inner = e.cause ?? e;
        let error = inner.name;
        let cause = stringOrJson(inner.cause ?? inner.message) ?? null;
        // A Fail state without Error/Cause: AWS reports neither (the library invents defaults).
        if (inner.constructor?.name === 'FailStateError') {
          if (inner.name === 'FailStateError') error = null;
          if (inner.message === 'Execution failed because of a Fail state') cause = null;
        }
        this.close('FAILED', { error, cause });
      } else {
        this.close('FAILED', { error: 'States.Runtime', cause: String(e?.message ?? e) });
      }
    }
  }

  // The one way an execution ends: status, closing history event, tasks and timers cancelled,
  // the status change event published. Idempotent: the first caller decides.
  close(status, { output, error = null, cause = null } = {}) {
    if (this.status !== 'RUNNING') return;
    const closing = {
      SUCCEEDED: ['ExecutionSucceeded', { executionSucceededEventDetails: { output: json(output ?? null), outputDetails: { truncated: false } } }],
      FAILED: ['ExecutionFailed', { executionFailedEventDetails: { error: error ?? undefined, cause: cause ?? undefined } }],
      ABORTED: ['ExecutionAborted', { executionAbortedEventDetails: { error: error ?? undefined, cause: cause ?? undefined } }],
      TIMED_OUT: ['ExecutionTimedOut', { executionTimedOutEventDetails: { error: error ?? undefined, cause: cause ?? undefined } }],
    }[status];
    const id = this.history.length + 1;
    this.history.push({ timestamp: seconds(Date.now()), type: closing[0], id, previousEventId: id - 1, ...JSON.parse(JSON.stringify(closing[1])) });
    this.status = status;
    this.output = output;
    this.error = error ?? undefined;
    this.cause = cause ?? undefined;
    this.stopped = Date.now();
    for (const t of this.openTasks) t.cancel();
    this.run?.abort();
    this.controller.abort();
    console.error(`sfn-local: ${this.name} ${status}${error ? ` (${error})` : ''}`);
    this.service.publish(this.service.statusChangeEvent(this), this.machine);
    this.resolveDone(this);
  }

  // ---- Task states
  taskHandlers(resolveFunction) {
    const handlers = {};
    const seen = {};
    for (const [name, state, path] of allStates(this.machine.definition)) {
      if (state.Type !== 'Task') continue;
      if (seen[name] !== undefined && seen[name] !== state.Resource) {
        throw new RunnerError(`two Task states named "${name}" with different resources (${path.join('/')}); state names must be unique`);
      }
      seen[name] = state.Resource;
      handlers[name] = (input) => this.runTask(name, state, input, resolveFunction);
    }
    return handlers;
  }

  async runTask(name, state, rawInput, resolveFunction) {
    if (this.status !== 'RUNNING') throw uncatchable('States.Runtime', 'the execution is closed');
    const invoke = makeInvoker(this.service.lambdaEndpoint, this.controller.signal);
    const callback = LAMBDA_CALLBACK.test(state.Resource);
    const optimised = callback || LAMBDA_INVOKE.test(state.Resource);
    const token = callback ? `okra-task-token-v1.${randomBytes(48).toString('base64url')}` : undefined;
    const input = replaceDeep(rawInput, TOKEN_SENTINEL, token ?? TOKEN_SENTINEL);
    const factor = this.service.fastTimeouts;
    // TimeoutSecondsPath/HeartbeatSecondsPath: reference paths into the state input (ASL spec,
    // Task state: "a positive integer"); the state input is the one StateEntered logged.
    const stateInput = als.getStore()?.inputs?.[name];
    const fromPath = (path, field) => {
      if (path === undefined) return undefined;
      let v;
      try {
        v = this.lib.__internals.jsonPathQuery(path, stateInput, {}, {});
      } catch (e) {
        v = undefined;
      }
      if (!Number.isInteger(v) || v < 1) {
        this.close('FAILED', { error: 'States.Runtime', cause: `${name}: ${field} ${path} is not a positive integer in the state input (${JSON.stringify(v)})` });
        throw uncatchable('States.Runtime', `${field}: not a positive integer`);
      }
      return v;
    };
    const timeoutS = state.TimeoutSeconds ?? fromPath(state.TimeoutSecondsPath, 'TimeoutSecondsPath');
    const heartbeatS = callback ? (state.HeartbeatSeconds ?? fromPath(state.HeartbeatSecondsPath, 'HeartbeatSecondsPath')) : undefined;
    const resource = callback ? 'invoke.waitForTaskToken' : 'invoke';
    const ev = optimised
      ? {
        scheduled: ['TaskScheduled', { taskScheduledEventDetails: { resourceType: 'lambda', resource, region: this.service.region, parameters: json(input), timeoutInSeconds: timeoutS, heartbeatInSeconds: heartbeatS } }],
        started: ['TaskStarted', { taskStartedEventDetails: { resourceType: 'lambda', resource } }],
        succeeded: (out) => ['TaskSucceeded', { taskSucceededEventDetails: { resourceType: 'lambda', resource, output: json(out), outputDetails: { truncated: false } } }],
        failed: (error, cause) => ['TaskFailed', { taskFailedEventDetails: { resourceType: 'lambda', resource, error, cause } }],
        timedOut: (error, cause) => ['TaskTimedOut', { taskTimedOutEventDetails: { resourceType: 'lambda', resource, error, cause } }],
      }
      : {
        scheduled: ['LambdaFunctionScheduled', { lambdaFunctionScheduledEventDetails: { resource: state.Resource, input: json(input), inputDetails: { truncated: false }, timeoutInSeconds: timeoutS } }],
        started: ['LambdaFunctionStarted', {}],
        succeeded: (out) => ['LambdaFunctionSucceeded', { lambdaFunctionSucceededEventDetails: { output: json(out), outputDetails: { truncated: false } } }],
        failed: (error, cause) => ['LambdaFunctionFailed', { lambdaFunctionFailedEventDetails: { error, cause } }],
        timedOut: (error, cause) => ['LambdaFunctionTimedOut', { lambdaFunctionTimedOutEventDetails: { error, cause } }],
      };
    const rec = ([type, details]) => this.record(type, JSON.parse(JSON.stringify(details)));
    if (!this.checkPayload(input, `input of task '${name}'`)) throw uncatchable('States.DataLimitExceeded', 'payload');
    rec(ev.scheduled);
    rec(ev.started);

    // One attempt: the invocation (and, for a callback, the wait for the token), raced against
    // TimeoutSeconds / HeartbeatSeconds (scaled by --fast-timeouts), and the execution closing.
    const attempt = { closed: false };
    const { promise, resolve, reject } = Promise.withResolvers();
    const timers = [];
    // A callback's time-out given by TimeoutSecondsPath is one of okra's timed waits: shortened
    // like a Wait state when the service says so (--fast-pauses); a wait for a person's, and a
    // weight step held until its deployment window opens (`"wait": "window"`: a wall-clock
    // time), are deadlines, scaled by --person-waits only.
    const personWait = callback && ['person', 'window'].includes(input?.Payload?.wait)
      && input?.Payload?.seconds !== undefined;
    const timedWait = callback && !personWait && state.TimeoutSeconds === undefined
      && state.TimeoutSecondsPath !== undefined && this.service.fastPauses !== undefined;
    const arm = (secondsValue, error) => {
      if (secondsValue === undefined) return undefined;
      const scale = personWait && error === 'States.Timeout' ? this.service.personWaits : factor;
      const ms = timedWait && error === 'States.Timeout' ? this.service.fastPauses : secondsValue * 1000 * scale;
      if (ms > MAX_TIMER_MS) return undefined;
      const t = setTimeout(() => reject(Object.assign(this.timeoutError(error), { okraTimeout: true })), Math.max(0, ms));
      timers.push(t);
      return t;
    };
    arm(timeoutS, 'States.Timeout');
    let heartbeatTimer = arm(heartbeatS, 'States.HeartbeatTimeout');
    // A callback can be answered before the invocation that carries its token has returned (the
    // function hands the token on, then finishes). AWS's history still reads TaskSubmitted, then
    // TaskSucceeded/TaskFailed: an early answer is held until the submission is recorded.
    let submitted = !callback;
    let early;
    const settleWhenSubmitted = (settle) => {
      if (submitted) settle();
      else if (!early) early = settle;
    };
    const task = {
      closed: false,
      stateMachineArn: this.machine.arn,
      succeed: (out) => settleWhenSubmitted(() => resolve({ callback: out })),
      fail: (error, cause) => settleWhenSubmitted(() => reject(Object.assign(new LambdaError(error, cause), { okraCallback: true, okraCause: cause }))),
      heartbeat: () => {
        if (heartbeatTimer !== undefined) {
          clearTimeout(heartbeatTimer);
          heartbeatTimer = arm(heartbeatS, 'States.HeartbeatTimeout');
        }
      },
      cancel: () => reject(uncatchable('States.Runtime', 'the execution is closed')),
    };
    this.openTasks.add(task);
    if (token) this.service.tokens.set(token, task);
    try {
      let result;
      try {
        const run = (async () => {
          if (optimised) {
            const fn = input?.FunctionName;
            if (typeof fn !== 'string') throw new LambdaError('States.Runtime', `${name}: lambda:invoke needs Parameters.FunctionName`);
            if (token && this.service.onTaskToken) await this.service.onTaskToken(token);
            const payload = await invoke(resolveFunction(fn), input.Payload ?? {});
            const requestId = randomUUID();
            const wrapped = {
              ExecutedVersion: '$LATEST',
              Payload: payload,
              SdkHttpMetadata: { HttpHeaders: { 'Content-Type': 'application/json', 'X-Amz-Executed-Version': '$LATEST', 'x-amzn-RequestId': requestId }, HttpStatusCode: 200 },
              SdkResponseMetadata: { RequestId: requestId },
              StatusCode: 200,
            };
            if (!callback) return { result: wrapped };
            if (this.status !== 'RUNNING') return undefined;
            rec(['TaskSubmitted', { taskSubmittedEventDetails: { resourceType: 'lambda', resource, output: json(wrapped), outputDetails: { truncated: false } } }]);
            submitted = true;
            if (early) early();
            return undefined; // the result comes from SendTaskSuccess
          }
          return { result: await invoke(resolveFunction(state.Resource), input) };
        })();
        run.then((r) => { if (r) resolve(r); }, reject);
        const settled = await promise;
        result = settled.callback !== undefined ? settled.callback : settled.result;
      } catch (e) {
        if (this.status !== 'RUNNING' || e.isCatchable === false) throw uncatchable(e.name ?? 'States.Runtime', e.message);
        const error = e.name;
        const cause = e.okraCallback ? e.okraCause : (e.message ?? '');
        rec(e.okraTimeout ? ev.timedOut(error, cause || undefined) : ev.failed(error, cause));
        throw e;
      }
      if (this.status !== 'RUNNING') throw uncatchable('States.Runtime', 'the execution is closed');
      if (!this.checkPayload(result, `result of task '${name}'`)) throw uncatchable('States.DataLimitExceeded', 'payload');
      rec(ev.succeeded(result));
      return result;
    } finally {
      attempt.closed = true;
      task.closed = true;
      this.openTasks.delete(task);
      for (const t of timers) clearTimeout(t);
      clearTimeout(heartbeatTimer);
    }
  }

  timeoutError(name) {
    if (name === 'States.Timeout') {
      // The library's own class: `States.TaskFailed` does not match it ("Handling errors":
      // States.TaskFailed matches any known error "except for States.Timeout").
      return new this.lib.__internals.StatesTimeoutError();
    }
    const e = new Error(name);
    e.name = name;
    return e;
  }
}

// ---------------------------------------------------------------------- HTTP
// authorize (optional): async (op, body, headers) => void, run before the operation; it throws an
// ApiError to refuse the request (sfn-local's IAM, server.mjs).
export function handler(service, { authorize } = {}) {
  return (req, res) => {
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
        if (!OPERATIONS.includes(op) && !LOCAL_OPERATIONS.includes(op)) throw new ApiError('UnknownOperationException', `sfn-local does not implement ${target || '(no X-Amz-Target)'}`);
        const text = Buffer.concat(chunks).toString('utf8');
        let body;
        try {
          body = text.trim() === '' ? {} : JSON.parse(text);
        } catch {
          throw new ApiError('SerializationException', 'the body is not JSON');
        }
        if (authorize) await authorize(op, body, req.headers);
        reply(200, await service[op](body));
      } catch (e) {
        if (e instanceof ApiError) reply(e.status, { __type: e.type, message: e.message });
        else reply(500, { __type: 'InternalFailure', message: String(e?.stack ?? e) });
      }
    });
  };
}
