//! The syntax of what a spec names: ELB ARNs, regions and names, statistics, matchers, and the
//! variables a CEL expression reads.

use super::*;

pub(super) use crate::arn::ElbArn;

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
    use crate::arn::is_region;

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
