//! The syntax of what a spec names: ELB ARNs, regions and names, statistics, matchers, and the
//! variables a CEL expression reads.

use super::*;

/// The parts of an Elastic Load Balancing listener or listener rule ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ElbArn<'s> {
    pub(super) partition: &'s str,
    pub(super) region: &'s str,
    pub(super) account: &'s str,
    /// `app` or `net`.
    pub(super) lb_type: &'s str,
    pub(super) lb_name: &'s str,
    /// Load balancer id, listener id, and (for a rule) rule id.
    pub(super) ids: Vec<&'s str>,
}

impl<'s> ElbArn<'s> {
    /// Parses `arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:RESOURCE/app|net/NAME/ID/ID[/ID]`
    /// with `RESOURCE` = `resource` (`listener` or `listener-rule`); the error says what is wrong.
    pub(super) fn parse(arn: &'s str, resource: &str) -> Result<Self, String> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, rest] = parts[..] else {
            return Err("it does not have the six `:`-separated parts of an ARN".to_string());
        };
        if prefix != "arn" {
            return Err("it does not start with `arn:`".to_string());
        }
        if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
            return Err(format!(
                "`{partition}` is not a partition: aws, aws-cn or aws-us-gov"
            ));
        }
        if service != "elasticloadbalancing" {
            return Err(format!(
                "its service is `{service}`, not `elasticloadbalancing`"
            ));
        }
        if !is_region(region) {
            return Err(format!("`{region}` is not a region such as us-east-1"));
        }
        let expected_partition = if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        if partition != expected_partition {
            return Err(format!(
                "region `{region}` is in partition `{expected_partition}`, not `{partition}`"
            ));
        }
        if !(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())) {
            return Err(format!("`{account}` is not a 12-digit account id"));
        }
        let segments: Vec<&str> = rest.split('/').collect();
        let id_count = if resource == "listener-rule" { 3 } else { 2 };
        let kind = segments.first().copied().unwrap_or_default();
        if kind != resource {
            return Err(format!("its resource is a `{kind}`, not a `{resource}`"));
        }
        if segments.len() != 3 + id_count {
            return Err(format!(
                "`{rest}` does not have the {} `/`-separated parts of a {resource}",
                3 + id_count
            ));
        }
        let lb_type = segments[1];
        if !matches!(lb_type, "app" | "net") {
            return Err(format!(
                "`{lb_type}` is not a load balancer type: `app` (ALB) or `net` (NLB)"
            ));
        }
        let lb_name = segments[2];
        if !is_lb_name(lb_name) {
            return Err(format!(
                "`{lb_name}` is not a load balancer name: 1-32 of a-z, A-Z, 0-9 and -, with no - at \
                 either end"
            ));
        }
        let ids = segments[3..].to_vec();
        if let Some(bad) = ids.iter().find(|id| !is_elb_id(id)) {
            return Err(format!("`{bad}` is not an id of 16 lower-case hex digits"));
        }
        Ok(Self {
            partition,
            region,
            account,
            lb_type,
            lb_name,
            ids,
        })
    }

    /// Whether this rule ARN is of the listener `listener`.
    pub(super) fn same_listener(&self, listener: &ElbArn<'_>) -> bool {
        self.partition == listener.partition
            && self.region == listener.region
            && self.account == listener.account
            && self.lb_type == listener.lb_type
            && self.lb_name == listener.lb_name
            && self.ids.len() >= 2
            && listener.ids.len() >= 2
            && self.ids[..2] == listener.ids[..2]
    }
}

pub(super) fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

pub(super) fn is_lb_name(n: &str) -> bool {
    (1..=32).contains(&n.len())
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !n.starts_with('-')
        && !n.ends_with('-')
}

pub(super) fn is_elb_id(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `^[a-z][a-zA-Z0-9_]*$`, GetMetricData's query ids.
pub(super) fn is_query_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Letters, digits, `_` and `-`, starting with a letter or `_`.
pub(super) fn is_arg_name(n: &str) -> bool {
    n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `Sum`, `Average`, `Maximum`, `Minimum`, `SampleCount`, or `p` and a number in 0..=100.
pub(super) fn is_stat(s: &str) -> bool {
    if matches!(s, "Sum" | "Average" | "Maximum" | "Minimum" | "SampleCount") {
        return true;
    }
    let Some(n) = s.strip_prefix('p') else {
        return false;
    };
    let digits = n.bytes().filter(u8::is_ascii_digit).count();
    let dots = n.bytes().filter(|b| *b == b'.').count();
    digits > 0
        && digits + dots == n.len()
        && dots <= 1
        && !n.starts_with('.')
        && !n.ends_with('.')
        && n.parse::<f64>().is_ok_and(|p| (0.0..=100.0).contains(&p))
}

/// `200`, `200,202`, `200-399`, each code in `lo..=hi`.
pub(super) fn check_matcher(m: &str, lo: u16, hi: u16) -> Result<(), String> {
    let shape = format!("`{m}` is not an HTTP code matcher such as 200, 200,202 or 200-399");
    let code = |s: &str| -> Result<u16, String> {
        if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(shape.clone());
        }
        let c: u16 = s.parse().map_err(|_| shape.clone())?;
        if (lo..=hi).contains(&c) {
            Ok(c)
        } else {
            Err(format!(
                "code {c} is not in {lo}-{hi}, the codes this health check accepts"
            ))
        }
    };
    for item in m.split(',') {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (code(a)?, code(b)?);
                if a > b {
                    return Err(format!("`{item}` is not a range: {a} is more than {b}"));
                }
            }
            None => {
                code(item)?;
            }
        }
    }
    Ok(())
}

/// Type names that cel resolves as identifiers, as in `type(result) == double`.
pub(super) const CEL_TYPE_NAMES: [&str; 10] = [
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
];

/// The free variables of a CEL expression that are neither `result` nor `args`, and the fields of
/// `args` it reads.
#[derive(Debug, Default)]
pub(super) struct References {
    pub(super) variables: BTreeSet<String>,
    pub(super) args: BTreeSet<String>,
}

impl References {
    pub(super) fn collect<'e>(&mut self, e: &'e cel::IdedExpr, bound: &mut Vec<&'e str>) {
        match &e.expr {
            Expr::Unspecified | Expr::Literal(_) => {}
            Expr::Ident(name) => {
                if !(name == "result"
                    || name == "args"
                    || CEL_TYPE_NAMES.contains(&name.as_str())
                    || name.starts_with('@')
                    || bound.contains(&name.as_str()))
                {
                    self.variables.insert(name.clone());
                }
            }
            Expr::Select(s) => {
                if let Expr::Ident(name) = &s.operand.expr
                    && name == "args"
                    && !bound.contains(&"args")
                {
                    self.args.insert(s.field.clone());
                }
                self.collect(&s.operand, bound);
            }
            Expr::Call(c) => {
                if let Some(t) = &c.target {
                    self.collect(t, bound);
                }
                for a in &c.args {
                    self.collect(a, bound);
                }
            }
            Expr::List(l) => {
                for el in &l.elements {
                    self.collect(el, bound);
                }
            }
            Expr::Map(m) => {
                for entry in &m.entries {
                    self.entry(&entry.expr, bound);
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    self.entry(&entry.expr, bound);
                }
            }
            Expr::Comprehension(c) => {
                self.collect(&c.iter_range, bound);
                self.collect(&c.accu_init, bound);
                let depth = bound.len();
                bound.push(&c.iter_var);
                if let Some(v2) = &c.iter_var2 {
                    bound.push(v2);
                }
                bound.push(&c.accu_var);
                self.collect(&c.loop_cond, bound);
                self.collect(&c.loop_step, bound);
                self.collect(&c.result, bound);
                bound.truncate(depth);
            }
        }
    }

    pub(super) fn entry<'e>(&mut self, e: &'e EntryExpr, bound: &mut Vec<&'e str>) {
        match e {
            EntryExpr::StructField(f) => self.collect(&f.value, bound),
            EntryExpr::MapEntry(m) => {
                self.collect(&m.key, bound);
                self.collect(&m.value, bound);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn elb_arns() {
        let l = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2";
        let a = ElbArn::parse(l, "listener").unwrap();
        assert_eq!(a.lb_type, "app");
        assert_eq!(a.lb_name, "web");
        assert_eq!(a.ids, ["50dc6c495c0c9188", "f2f7dc8efc522ab2"]);
        let r = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
        assert!(ElbArn::parse(r, "listener-rule").unwrap().same_listener(&a));
        assert!(ElbArn::parse(r, "listener").is_err());
        assert!(ElbArn::parse(l, "listener-rule").is_err());
        for bad in [
            "",
            "arn",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/gwy/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/-web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50DC6C495C0C9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east-1:12345678901:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:cn-north-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:ec2:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188",
        ] {
            assert!(ElbArn::parse(bad, "listener").is_err(), "{bad}");
        }
        for good in [
            "arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:listener/net/a/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:123456789012:listener/app/A-1/50dc6c495c0c9188/f2f7dc8efc522ab2",
        ] {
            assert!(ElbArn::parse(good, "listener").is_ok(), "{good}");
        }
    }

    #[test]
    pub(super) fn stats() {
        for good in [
            "Sum",
            "Average",
            "Maximum",
            "Minimum",
            "SampleCount",
            "p0",
            "p50",
            "p99",
            "p99.9",
            "p100",
        ] {
            assert!(is_stat(good), "{good}");
        }
        for bad in [
            "sum", "p", "p101", "p-1", "p99.", "p.9", "p9.9.9", "pinf", "pNaN", "tm99", "", "p 99",
        ] {
            assert!(!is_stat(bad), "{bad}");
        }
    }

    #[test]
    pub(super) fn matchers() {
        assert!(check_matcher("200", 200, 499).is_ok());
        assert!(check_matcher("200,202", 200, 499).is_ok());
        assert!(check_matcher("200-399", 200, 499).is_ok());
        assert!(check_matcher("200-299,404", 200, 499).is_ok());
        assert!(check_matcher("503", 200, 599).is_ok());
        for bad in [
            "", "2xx", "200-", "200,", "399-200", "20", "2000", "200 ", "100", "503",
        ] {
            assert!(check_matcher(bad, 200, 499).is_err(), "{bad}");
        }
    }

    #[test]
    pub(super) fn ids_and_names() {
        assert!(is_query_id("m1"));
        assert!(is_query_id("errorRate_5xx"));
        assert!(!is_query_id("M1"));
        assert!(!is_query_id("1m"));
        assert!(!is_query_id("a-b"));
        assert!(!is_query_id(""));
        assert!(is_region("us-east-1"));
        assert!(is_region("us-gov-west-1"));
        assert!(is_region("ap-southeast-4"));
        assert!(!is_region("us-east"));
        assert!(!is_region("US-EAST-1"));
        assert!(!is_region("useast-1"));
    }

    pub(super) fn refs(expr: &str) -> References {
        let p = cel::Program::compile(expr).unwrap();
        let mut r = References::default();
        r.collect(p.expression(), &mut Vec::new());
        r
    }

    #[test]
    pub(super) fn cel_references() {
        assert!(refs("result < 0.01").variables.is_empty());
        assert!(
            refs("result < double(args.threshold)")
                .args
                .contains("threshold")
        );
        assert!(refs("[1, 2].all(x, x < result)").variables.is_empty());
        assert!(
            refs("{'a': result}.exists(k, k == 'a')")
                .variables
                .is_empty()
        );
        assert!(refs("type(result) == double").variables.is_empty());
        let r = refs("foo > 1 && [1].exists(x, x == bar)");
        assert_eq!(
            r.variables.iter().map(String::as_str).collect::<Vec<_>>(),
            ["bar", "foo"]
        );
    }
}
