//! The canary steps, the analysis templates and their queries, and the judge.

use super::*;

impl Validator<'_> {
    pub(super) fn canary(&mut self) {
        let steps = &self.spec.canary.steps;
        if steps.len() > MAX_STEPS {
            self.push(
                "canary.steps",
                format!("has {} steps; at most {MAX_STEPS} are allowed", steps.len()),
            );
        }
        let weighted = self.spec.ingress.weighted();
        // The highest valid weight so far, and the index of the step that set it.
        let mut highest: Option<(u32, usize)> = None;
        for (i, step) in steps.iter().enumerate() {
            let sp = format!("canary.steps[{i}]");
            self.step_shape(&sp, step);
            if let Some(w) = step.set_weight {
                let wp = format!("{sp}.setWeight");
                if w > 100 {
                    self.push(wp, format!("{w} is not in 0..=100"));
                    continue;
                }
                match highest {
                    Some((hw, hi)) if w < hw => self.push(
                        &wp,
                        format!(
                            "{w} is lower than the {hw} set at canary.steps[{hi}]; weights may not \
                             go down (use an abort to go back)"
                        ),
                    ),
                    _ => highest = Some((w, i)),
                }
                if !weighted && w != 0 && w != 100 {
                    self.push(
                        wp,
                        format!(
                            "{w} needs a weighted listener: this NLB is blue/green (weighted: \
                             false), so a step can only set 0 or 100"
                        ),
                    );
                }
            }
            if let Some(pause) = &step.pause {
                if let Some(d) = &pause.duration {
                    self.duration(&format!("{sp}.pause.duration"), d);
                    if pause.timeout.is_some() || pause.on_timeout.is_some() {
                        let f = if pause.timeout.is_some() {
                            "timeout"
                        } else {
                            "onTimeout"
                        };
                        self.push(
                            format!("{sp}.pause.{f}"),
                            "a timed pause ends by itself after its duration; timeout and \
                             onTimeout are for a pause until resumed (`pause: {}`)",
                        );
                    }
                } else {
                    self.wait_timeout(&format!("{sp}.pause"), i, &pause.timeout, pause.on_timeout);
                }
            }
            if let Some(a) = &step.analysis {
                self.analysis_ref(&format!("{sp}.analysis"), &a.templates, &a.args);
                self.wait_timeout(&format!("{sp}.analysis"), i, &a.timeout, a.on_timeout);
            }
        }
        if let Some(bg) = &self.spec.canary.analysis {
            self.analysis_ref("canary.analysis", &bg.templates, &bg.args);
            let n = steps.len();
            if bg.starting_step as usize > n {
                self.push(
                    "canary.analysis.startingStep",
                    format!(
                        "{} is past the last step: there are {n} steps, so it must be in 0..={n}",
                        bg.starting_step
                    ),
                );
            }
        }
    }

    /// A wait for a person's `timeout` and `onTimeout` (at `path`, step `i`): a duration of at
    /// most a year, `onTimeout` only with a `timeout`, and no time-out where the background
    /// analysis wakes the wait itself (an interval that is not whole minutes).
    fn wait_timeout(
        &mut self,
        path: &str,
        i: usize,
        timeout: &Option<String>,
        on_timeout: Option<crate::vocab::OnTimeout>,
    ) {
        let Some(t) = timeout else {
            if on_timeout.is_some() {
                self.push(
                    format!("{path}.onTimeout"),
                    "needs a timeout: without one the wait lasts until a person answers",
                );
            }
            return;
        };
        let tp = format!("{path}.timeout");
        if let Some(d) = self.duration(&tp, t) {
            let most = crate::decision::LONGEST_WAIT_SECONDS;
            if d.as_secs() < 1 || d.as_secs() > most {
                self.push(
                    &tp,
                    format!("`{t}` is not between 1s and 365d (the longest an execution may wait)"),
                );
            }
        }
        let spec = self.spec;
        if let Some(bg) = &spec.canary.analysis
            && i >= bg.starting_step as usize
            && let Ok((_, interval)) = crate::decision::timing(spec, &bg.templates)
            && crate::schedule::rate_expression(interval).is_none()
        {
            self.push(
                &tp,
                format!(
                    "the background analysis samples every {interval}s here, which wakes this wait \
                     in the state machine; a time-out needs its metrics' interval in whole minutes \
                     (their samples then run on a schedule and the wait keeps its own time-out)"
                ),
            );
        }
    }

    pub(super) fn step_shape(&mut self, path: &str, step: &CanaryStep) {
        let set: Vec<&str> = [
            ("setWeight", step.set_weight.is_some()),
            ("pause", step.pause.is_some()),
            ("analysis", step.analysis.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, is_set)| is_set.then_some(name))
        .collect();
        if set.len() != 1 {
            let found = if set.is_empty() {
                "none".to_string()
            } else {
                list(&set)
            };
            self.push(
                path,
                format!(
                    "a step must set exactly one of setWeight, pause and analysis; this one sets {found}"
                ),
            );
        }
    }

    /// A step's analysis or the background analysis: its templates exist, and its args are the
    /// ones they need.
    pub(super) fn analysis_ref(&mut self, path: &str, refs: &[TemplateRef], args: &[Arg]) {
        let spec = self.spec;
        if refs.is_empty() {
            self.push(
                format!("{path}.templates"),
                "must name at least one analysis template",
            );
        }
        let mut resolved: Vec<&AnalysisTemplate> = Vec::new();
        let mut all_resolved = true;
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, r) in refs.iter().enumerate() {
            let rp = format!("{path}.templates[{i}].templateName");
            let name = r.template_name.as_str();
            if let Some(first) = seen.get(name) {
                self.push(
                    rp,
                    format!("`{name}` is already named at {path}.templates[{first}]"),
                );
                continue;
            }
            seen.insert(name, i);
            match spec.analysis_templates.iter().find(|t| t.name == name) {
                Some(t) => resolved.push(t),
                None => {
                    all_resolved = false;
                    let known = quoted(spec.analysis_templates.iter().map(|t| t.name.as_str()));
                    self.push(
                        rp,
                        format!("`{name}` is not the name of any of analysisTemplates (they are: {known})"),
                    );
                }
            }
        }
        let mut given: HashMap<&str, usize> = HashMap::new();
        for (j, a) in args.iter().enumerate() {
            let ap = format!("{path}.args[{j}]");
            let name = a.name.as_str();
            if let Some(first) = given.get(name) {
                self.push(
                    format!("{ap}.name"),
                    format!("`{name}` is already given at {path}.args[{first}]"),
                );
                continue;
            }
            given.insert(name, j);
            if a.value.is_none() {
                self.push(format!("{ap}.value"), format!("arg `{name}` needs a value"));
            }
            // An arg might belong to a template that does not resolve: say nothing then.
            if all_resolved
                && !resolved
                    .iter()
                    .any(|t| t.args.iter().any(|ta| ta.name == name))
            {
                let names: Vec<&str> = resolved.iter().map(|t| t.name.as_str()).collect();
                let declared = quoted(
                    resolved
                        .iter()
                        .flat_map(|t| t.args.iter().map(|a| a.name.as_str())),
                );
                self.push(
                    format!("{ap}.name"),
                    format!(
                        "`{name}` is not an arg of {} (they declare: {declared})",
                        if names.len() == 1 {
                            format!("template `{}`", names[0])
                        } else {
                            format!("templates {}", quoted(names))
                        }
                    ),
                );
            }
        }
        for t in resolved {
            for ta in &t.args {
                if ta.value.is_none() && !given.contains_key(ta.name.as_str()) {
                    self.push(
                        format!("{path}.args"),
                        format!(
                            "template `{}` needs arg `{}`, which has no default; give it here as \
                             {{name: {}, value: ...}}",
                            t.name, ta.name, ta.name
                        ),
                    );
                }
            }
        }
    }

    pub(super) fn analysis_templates(&mut self) {
        let spec = self.spec;
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (ti, t) in spec.analysis_templates.iter().enumerate() {
            let tp = format!("analysisTemplates[{ti}]");
            if t.name.is_empty() {
                self.push(format!("{tp}.name"), "must not be empty");
            } else if let Some(first) = seen.get(t.name.as_str()) {
                self.push(
                    format!("{tp}.name"),
                    format!(
                        "`{}` is already the name of analysisTemplates[{first}]",
                        t.name
                    ),
                );
            } else {
                seen.insert(&t.name, ti);
            }
            let mut arg_seen: HashMap<&str, usize> = HashMap::new();
            for (ai, a) in t.args.iter().enumerate() {
                let ap = format!("{tp}.args[{ai}].name");
                if !is_arg_name(&a.name) {
                    self.push(
                        ap,
                        format!(
                            "`{}` is not an arg name: use letters, digits, `_` and `-`, starting \
                             with a letter or `_`",
                            a.name
                        ),
                    );
                } else if let Some(first) = arg_seen.get(a.name.as_str()) {
                    self.push(
                        ap,
                        format!("`{}` is already declared at {tp}.args[{first}]", a.name),
                    );
                } else {
                    arg_seen.insert(&a.name, ai);
                }
            }
            let declared: BTreeSet<&str> = t.args.iter().map(|a| a.name.as_str()).collect();
            if t.metrics.is_empty() {
                self.push(
                    format!("{tp}.metrics"),
                    "a template needs at least one metric",
                );
            }
            let mut metric_seen: HashMap<&str, usize> = HashMap::new();
            for (mi, m) in t.metrics.iter().enumerate() {
                let mp = format!("{tp}.metrics[{mi}]");
                if m.name.is_empty() {
                    self.push(format!("{mp}.name"), "must not be empty");
                } else if let Some(first) = metric_seen.get(m.name.as_str()) {
                    self.push(
                        format!("{mp}.name"),
                        format!("`{}` is already the name of {tp}.metrics[{first}]", m.name),
                    );
                } else {
                    metric_seen.insert(&m.name, mi);
                }
                self.metric(&mp, m, &declared);
            }
        }
    }

    pub(super) fn metric(&mut self, mp: &str, m: &Metric, declared: &BTreeSet<&str>) {
        if let Some(d) = self.duration(&format!("{mp}.interval"), &m.interval)
            && d < Duration::from_secs(1)
        {
            self.push(
                format!("{mp}.interval"),
                format!(
                    "`{}` is shorter than 1s, the shortest interval between samples",
                    m.interval
                ),
            );
        }
        if let Some(delay) = &m.initial_delay {
            self.duration(&format!("{mp}.initialDelay"), delay);
        }
        if !(1..=MAX_METRIC_COUNT).contains(&m.count) {
            self.push(
                format!("{mp}.count"),
                format!("{} is not in 1..={MAX_METRIC_COUNT}", m.count),
            );
        }
        if m.success_condition.is_none() && m.failure_condition.is_none() {
            self.push(
                mp,
                format!(
                    "metric `{}` needs a successCondition, a failureCondition or both",
                    m.name
                ),
            );
        }
        for (field, cond) in [
            ("successCondition", &m.success_condition),
            ("failureCondition", &m.failure_condition),
        ] {
            if let Some(expr) = cond {
                self.condition(&format!("{mp}.{field}"), &m.name, expr, declared);
            }
        }
        let pp = format!("{mp}.provider");
        let set = m.provider.set();
        match set.as_slice() {
            [] => self.push(
                &pp,
                "set exactly one of `cloudwatch`, `datadog`, `prometheus`, `web` and `lambda`; \
                 none is set",
            ),
            [_] => {}
            many => self.push(
                &pp,
                format!(
                    "set exactly one of `cloudwatch`, `datadog`, `prometheus`, `web` and `lambda`, \
                     not {}",
                    quoted(many.iter().copied())
                ),
            ),
        }
        if let Some(cw) = &m.provider.cloudwatch {
            self.cloudwatch(&format!("{pp}.cloudwatch"), cw, declared);
        }
        if let Some(dd) = &m.provider.datadog {
            self.datadog(&format!("{pp}.datadog"), dd, declared);
        }
        if let Some(p) = &m.provider.prometheus {
            self.prometheus(&format!("{pp}.prometheus"), p, declared);
        }
        if let Some(w) = &m.provider.web {
            self.web(&format!("{pp}.web"), w, declared);
        }
        if let Some(l) = &m.provider.lambda {
            self.lambda(&format!("{pp}.lambda"), l);
        }
    }

    pub(super) fn prometheus(
        &mut self,
        pp: &str,
        p: &PrometheusProvider,
        declared: &BTreeSet<&str>,
    ) {
        self.http_url(&format!("{pp}.address"), &p.address, declared);
        if p.address.contains('?') || p.address.contains("{{") {
            self.push(
                format!("{pp}.address"),
                "is the server's base URL (okra adds /api/v1/query and the query): no query \
                 string, no placeholder",
            );
        }
        let qp = format!("{pp}.query");
        if p.query.trim().is_empty() {
            self.push(&qp, "must not be empty");
        }
        self.placeholders(&qp, &p.query, declared);
        self.request_timeout(&format!("{pp}.timeout"), p.timeout.as_deref());
        self.headers(pp, &p.headers);
        if let Some(s) = &p.sigv4 {
            let valid = !s.region.is_empty()
                && s.region.split('-').all(|w| {
                    !w.is_empty()
                        && w.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                })
                && s.region.contains('-');
            if !valid {
                self.push(
                    format!("{pp}.sigv4.region"),
                    format!("`{}` is not a region such as us-east-1", s.region),
                );
            }
            if let Some(role) = &s.role_arn
                && let Err(why) = crate::arn::check_role_arn(role)
            {
                self.push(format!("{pp}.sigv4.roleArn"), format!("`{role}`: {why}"));
            }
        }
    }

    pub(super) fn web(&mut self, wp: &str, w: &WebProvider, declared: &BTreeSet<&str>) {
        self.http_url(&format!("{wp}.url"), &w.url, declared);
        if let Err(e) = crate::analysis::probe::check_json_path(&w.json_path) {
            self.push(
                format!("{wp}.jsonPath"),
                format!(
                    "`{}` is not an RFC 9535 JSONPath such as $.data.errorRate: {e}",
                    w.json_path
                ),
            );
        }
        match (&w.body, w.method) {
            (Some(_), WebMethod::Get) => {
                self.push(format!("{wp}.body"), "a body needs `method: POST`")
            }
            (Some(b), WebMethod::Post) => self.placeholders(&format!("{wp}.body"), b, declared),
            (None, _) => {}
        }
        self.request_timeout(&format!("{wp}.timeout"), w.timeout.as_deref());
        self.headers(wp, &w.headers);
    }

    pub(super) fn lambda(&mut self, lp: &str, l: &LambdaProvider) {
        let f = l.function_name.as_str();
        let name = f
            .strip_prefix("arn:")
            .and_then(|rest| rest.split(':').nth(5))
            .unwrap_or_else(|| f.split(':').next().unwrap_or(f));
        let valid = !f.is_empty()
            && (f.starts_with("arn:") && f.split(':').nth(2) == Some("lambda")
                || !f.starts_with("arn:"))
            && !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            self.push(
                format!("{lp}.functionName"),
                format!(
                    "`{f}` is not a Lambda function name (letters, digits, - and _, at most 64) \
                     or a function ARN"
                ),
            );
        }
    }

    /// An http(s) URL (placeholders allowed, and checked).
    fn http_url(&mut self, path: &str, url: &str, declared: &BTreeSet<&str>) {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        match rest {
            Some(r) if !r.is_empty() && !r.starts_with('/') => {}
            _ => self.push(path, format!("`{url}` is not an http:// or https:// URL")),
        }
        self.placeholders(path, url, declared);
    }

    fn request_timeout(&mut self, path: &str, t: Option<&str>) {
        if let Some(t) = t
            && let Some(d) = self.duration(path, t)
            && !(Duration::from_secs(1)..=MAX_REQUEST_TIMEOUT).contains(&d)
        {
            self.push(
                path,
                format!(
                    "`{t}` is not between 1s and {}s (check-metrics' own time-out bounds a sample)",
                    MAX_REQUEST_TIMEOUT.as_secs()
                ),
            );
        }
    }

    fn headers(&mut self, pp: &str, headers: &[Header]) {
        for (i, h) in headers.iter().enumerate() {
            let hp = format!("{pp}.headers[{i}]");
            let token = !h.name.is_empty()
                && h.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                self.push(
                    format!("{hp}.name"),
                    format!("`{}` is not an HTTP header name", h.name),
                );
            }
            match (&h.value, &h.secret_arn) {
                (Some(_), Some(_)) => self.push(&hp, "set `value` or `secretArn`, not both"),
                (None, None) => self.push(&hp, "set `value` or `secretArn`"),
                (None, Some(arn)) => {
                    if !(arn.starts_with("arn:") && arn.split(':').nth(2) == Some("secretsmanager"))
                    {
                        self.push(
                            format!("{hp}.secretArn"),
                            format!("`{arn}` is not a Secrets Manager secret ARN"),
                        );
                    }
                }
                (Some(v), None) => {
                    if h.secret_key.is_some() {
                        self.push(format!("{hp}.secretKey"), "goes with `secretArn`");
                    }
                    if h.name.eq_ignore_ascii_case("authorization") {
                        self.push(
                            format!("{hp}.value"),
                            "a credential stored with the cell: keep it in Secrets Manager \
                             (`secretArn`) instead",
                        );
                    }
                    if v.contains(['\r', '\n']) {
                        self.push(format!("{hp}.value"), "must be one line");
                    }
                }
            }
        }
    }

    pub(super) fn condition(
        &mut self,
        path: &str,
        metric: &str,
        expr: &str,
        declared: &BTreeSet<&str>,
    ) {
        if expr.trim().is_empty() {
            self.push(path, format!("metric `{metric}`: the condition is empty"));
            return;
        }
        let program = match cel::Program::compile(expr) {
            Ok(p) => p,
            Err(e) => {
                let why: Vec<String> = e
                    .errors
                    .iter()
                    .map(|e| format!("{}:{}: {}", e.pos.0, e.pos.1, e.msg))
                    .collect();
                self.push(
                    path,
                    format!(
                        "metric `{metric}`: `{expr}` is not a valid CEL expression: {}",
                        why.join("; ")
                    ),
                );
                return;
            }
        };
        let mut refs = References::default();
        refs.collect(program.expression(), &mut Vec::new());
        if !refs.variables.is_empty() {
            self.push(
                path,
                format!(
                    "metric `{metric}`: `{expr}` refers to {}, but a condition may only use \
                     `result` (the metric's value) and `args`",
                    quoted(refs.variables.iter().map(String::as_str))
                ),
            );
        }
        for a in &refs.args {
            if !declared.contains(a.as_str()) {
                self.push(
                    path,
                    format!(
                        "metric `{metric}`: `{expr}` uses `args.{a}`, which the template does not \
                         declare (it declares: {})",
                        quoted(declared.iter().copied())
                    ),
                );
            }
        }
    }

    pub(super) fn cloudwatch(
        &mut self,
        cp: &str,
        cw: &CloudWatchProvider,
        declared: &BTreeSet<&str>,
    ) {
        if let Some(w) = &cw.window
            && let Some(d) = self.duration(&format!("{cp}.window"), w)
            && d < Duration::from_secs(1)
        {
            self.push(format!("{cp}.window"), format!("`{w}` is shorter than 1s"));
        }
        let qp = format!("{cp}.metricDataQueries");
        let n = cw.metric_data_queries.len();
        if n == 0 {
            self.push(&qp, "needs at least one query");
        } else if n > MAX_METRIC_DATA_QUERIES {
            self.push(
                &qp,
                format!("has {n} queries; GetMetricData takes at most {MAX_METRIC_DATA_QUERIES}"),
            );
        }
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut returns: Option<usize> = None;
        for (i, q) in cw.metric_data_queries.iter().enumerate() {
            let p = format!("{qp}[{i}]");
            if !is_query_id(&q.id) {
                self.push(
                    format!("{p}.id"),
                    format!(
                        "`{}` is not a query id: it must start with a letter a-z, then letters, \
                         digits and `_`",
                        q.id
                    ),
                );
            } else if let Some(first) = ids.get(q.id.as_str()) {
                self.push(
                    format!("{p}.id"),
                    format!("`{}` is already the id of {qp}[{first}]", q.id),
                );
            } else {
                ids.insert(&q.id, i);
            }
            match (&q.expression, &q.metric_stat) {
                (None, None) => self.push(
                    &p,
                    "set exactly one of `expression` and `metricStat`; neither is set",
                ),
                (Some(_), Some(_)) => self.push(
                    &p,
                    "set exactly one of `expression` and `metricStat`, not both",
                ),
                _ => {}
            }
            if q.return_data == Some(true) {
                if let Some(first) = returns {
                    self.push(
                        format!("{p}.returnData"),
                        format!(
                            "{qp}[{first}] already sets returnData: true; only one query may, as it \
                             gives `result`"
                        ),
                    );
                } else {
                    returns = Some(i);
                }
            }
            if let Some(e) = &q.expression {
                if e.trim().is_empty() {
                    self.push(format!("{p}.expression"), "must not be empty");
                }
                self.placeholders(&format!("{p}.expression"), e, declared);
            }
            if let Some(label) = &q.label {
                self.placeholders(&format!("{p}.label"), label, declared);
            }
            if let Some(ms) = &q.metric_stat {
                self.metric_stat(&format!("{p}.metricStat"), ms, declared);
            }
        }
    }

    pub(super) fn metric_stat(&mut self, sp: &str, ms: &MetricStat, declared: &BTreeSet<&str>) {
        if ms.namespace.is_empty() {
            self.push(format!("{sp}.namespace"), "must not be empty");
        }
        self.placeholders(&format!("{sp}.namespace"), &ms.namespace, declared);
        if ms.metric_name.is_empty() {
            self.push(format!("{sp}.metricName"), "must not be empty");
        }
        self.placeholders(&format!("{sp}.metricName"), &ms.metric_name, declared);
        for (k, v) in &ms.dimensions {
            self.placeholders(&format!("{sp}.dimensions"), k, declared);
            self.placeholders(&format!("{sp}.dimensions"), v, declared);
        }
        let period = ms.period;
        if !(matches!(period, 1 | 5 | 10 | 30) || (period > 0 && period.is_multiple_of(60))) {
            self.push(
                format!("{sp}.period"),
                format!(
                    "{period} is not a CloudWatch period: use 1, 5, 10, 30 or a multiple of 60"
                ),
            );
        }
        if !is_stat(&ms.stat) {
            self.push(
                format!("{sp}.stat"),
                format!(
                    "`{}` is not a statistic: use Sum, Average, Maximum, Minimum, SampleCount or a \
                     percentile such as p99 or p99.9",
                    ms.stat
                ),
            );
        }
    }

    pub(super) fn datadog(&mut self, dp: &str, dd: &DatadogProvider, declared: &BTreeSet<&str>) {
        let qp = format!("{dp}.query");
        if dd.query.trim().is_empty() {
            self.push(&qp, "must not be empty");
        } else if dd.query.len() > MAX_DATADOG_QUERY_BYTES {
            self.push(
                &qp,
                format!(
                    "is {} bytes long; a Datadog query holds at most 8 KiB ({MAX_DATADOG_QUERY_BYTES} bytes)",
                    dd.query.len()
                ),
            );
        }
        self.placeholders(&qp, &dd.query, declared);
        if let Some(i) = &dd.interval
            && let Some(d) = self.duration(&format!("{dp}.interval"), i)
            && d < Duration::from_secs(1)
        {
            self.push(
                format!("{dp}.interval"),
                format!("`{i}` is shorter than 1s"),
            );
        }
    }

    /// Every `{{...}}` in `text` must be `{{args.NAME}}` with a declared NAME.
    pub(super) fn placeholders(&mut self, path: &str, text: &str, declared: &BTreeSet<&str>) {
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                self.push(
                    path,
                    "a `{{` is not closed by `}}`; write placeholders as `{{args.NAME}}`",
                );
                return;
            };
            let inner = after[..end].trim();
            match inner.strip_prefix("args.").map(str::trim) {
                Some(name) if declared.contains(name) => {}
                Some(name) => self.push(
                    path,
                    format!(
                        "`{{{{args.{name}}}}}` names no arg of the template (it declares: {})",
                        quoted(declared.iter().copied())
                    ),
                ),
                None => self.push(
                    path,
                    format!(
                        "`{{{{{inner}}}}}` is not a placeholder okra fills; write `{{{{args.NAME}}}}`"
                    ),
                ),
            }
            rest = &after[end + 2..];
        }
    }

    fn judge_prometheus(&mut self, p: &JudgePrometheus, window: &str) {
        let pp = "judge.prometheus";
        let declared: BTreeSet<&str> = ["version"].into_iter().collect();
        self.http_url(&format!("{pp}.address"), &p.address, &BTreeSet::new());
        for (field, q) in [
            ("requests", &p.requests),
            ("errors", &p.errors),
            ("latency", &p.latency),
        ] {
            let qp = format!("{pp}.{field}");
            if q.trim().is_empty() {
                self.push(&qp, "must not be empty");
            }
            self.placeholders(&qp, q, &declared);
        }
        self.request_timeout(&format!("{pp}.timeout"), p.timeout.as_deref());
        self.headers(pp, &p.headers);
        let step = match &p.step {
            Some(s) => self.duration(&format!("{pp}.step"), s),
            None => Some(Duration::from_secs(60)),
        };
        let window = parse_duration(window).ok();
        if let (Some(step), Some(window)) = (step, window) {
            let points = if step.is_zero() {
                0
            } else {
                window.as_secs() / step.as_secs().max(1)
            };
            if step < Duration::from_secs(1) || !(3..=11_000).contains(&points) {
                self.push(
                    format!("{pp}.step"),
                    format!(
                        "{} over judge.window {} gives {points} points; the judge needs at least \
                         3 per side, Prometheus answers at most 11,000, and a step is at least 1s",
                        format_duration(step),
                        format_duration(window)
                    ),
                );
            }
        }
    }

    pub(super) fn judge(&mut self) {
        let j = &self.spec.judge;
        if !(j.confidence.is_finite() && (0.5..=0.999).contains(&j.confidence)) {
            self.push(
                "judge.confidence",
                format!("{} is not in 0.5..=0.999", j.confidence),
            );
        }
        if j.min_requests == 0 {
            self.push(
                "judge.minRequests",
                "0 is not allowed: a sample needs at least 1 request",
            );
        }
        if !(j.max_error_rate_increase.is_finite()
            && (0.0..=100.0).contains(&j.max_error_rate_increase))
        {
            self.push(
                "judge.maxErrorRateIncrease",
                format!(
                    "{} is not in 0..=100 (percentage points)",
                    j.max_error_rate_increase
                ),
            );
        }
        if !(j.max_latency_ratio.is_finite() && j.max_latency_ratio >= 1.0) {
            self.push(
                "judge.maxLatencyRatio",
                format!(
                    "{} must be a number of at least 1.0 (1.2 tolerates a canary 20 % slower)",
                    j.max_latency_ratio
                ),
            );
        }
        if let Some(p) = &j.prometheus {
            self.judge_prometheus(p, &j.window);
        } else if let Some(d) = self.duration("judge.window", &j.window)
            && d < Duration::from_secs(60)
        {
            self.push(
                "judge.window",
                format!(
                    "`{}` ({}) is shorter than 1m; CloudWatch's ELB metrics come once a minute",
                    j.window,
                    format_duration(d)
                ),
            );
        }
    }
}
