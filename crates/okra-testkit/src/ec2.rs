//! Raw EC2 Query API calls to moto (no aws-sdk-ec2: it is huge to compile) and minimal XML reading.

use std::fmt::Write as _;

use anyhow::{Context as _, bail};

use crate::{LocalAws, REGION};

/// `application/x-www-form-urlencoded` encoding of `pairs` (RFC 3986 unreserved characters kept).
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    fn enc(out: &mut String, s: &str) {
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(&mut out, k);
        out.push('=');
        enc(&mut out, v);
    }
    out
}

/// The text of every `<tag>...</tag>` element in `xml`, in document order (no nesting of the same
/// tag, no entities beyond `&amp; &lt; &gt; &quot; &apos;`): enough for moto's Query API answers.
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(
            after[..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    out
}

impl LocalAws {
    /// POSTs an EC2 Query API call (`Action=...&Version=2016-11-15&params...`) to moto and returns
    /// the XML answer. moto does not check signatures; it routes by the credential scope of the
    /// `Authorization` header, which is sent with a dummy signature. A non-200 answer is an error
    /// carrying moto's XML.
    pub fn ec2_query(&self, action: &str, params: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut pairs: Vec<(&str, &str)> = vec![("Action", action), ("Version", "2016-11-15")];
        pairs.extend_from_slice(params);
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/ec2/aws4_request, \
             SignedHeaders=content-type;host, Signature=0"
        );
        let mut response = self
            .agent()
            .post(format!("{}/", self.endpoint()))
            .header(
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .header("Authorization", authorization)
            .send(form_encode(&pairs))
            .with_context(|| format!("EC2 {action} to moto at {}", self.endpoint()))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading moto's answer to EC2 {action}"))?;
        if status != 200 {
            bail!("EC2 {action} answered HTTP {status}: {body}");
        }
        Ok(body)
    }

    /// Creates a VPC (10.0.0.0/16) with two subnets (10.0.1.0/24 in us-east-1a, 10.0.2.0/24 in
    /// us-east-1b, what an ALB needs) and returns `(vpc_id, [subnet_id, subnet_id])`.
    pub fn create_vpc_with_subnets(&self) -> anyhow::Result<(String, Vec<String>)> {
        let xml = self.ec2_query("CreateVpc", &[("CidrBlock", "10.0.0.0/16")])?;
        let vpc_id = xml_values(&xml, "vpcId")
            .into_iter()
            .next()
            .with_context(|| format!("no vpcId in CreateVpc answer: {xml}"))?;
        let mut subnets = Vec::new();
        for (cidr, az) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
            let xml = self.ec2_query(
                "CreateSubnet",
                &[
                    ("VpcId", &vpc_id),
                    ("CidrBlock", cidr),
                    ("AvailabilityZone", az),
                ],
            )?;
            subnets.push(
                xml_values(&xml, "subnetId")
                    .into_iter()
                    .next()
                    .with_context(|| format!("no subnetId in CreateSubnet answer: {xml}"))?,
            );
        }
        Ok((vpc_id, subnets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_forms() {
        assert_eq!(
            form_encode(&[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")]),
            "Action=CreateVpc&CidrBlock=10.0.0.0%2F16"
        );
        assert_eq!(form_encode(&[("a b", "x&y=z")]), "a%20b=x%26y%3Dz");
    }

    #[test]
    fn reads_xml_values() {
        let xml = "<r><vpc><vpcId>vpc-1</vpcId></vpc><x><vpcId>a&amp;b</vpcId></x></r>";
        assert_eq!(xml_values(xml, "vpcId"), vec!["vpc-1", "a&b"]);
        assert!(xml_values(xml, "subnetId").is_empty());
    }
}
