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
    /// the XML answer. See [`LocalAws::query`].
    pub fn ec2_query(&self, action: &str, params: &[(&str, &str)]) -> anyhow::Result<String> {
        self.query("ec2", "2016-11-15", action, params)
    }

    /// POSTs a JSON 1.1 call (`X-Amz-Target: PREFIX.Operation`, such as `AWSEvents.PutRule`) of
    /// `service` (its signing name) to moto and returns the JSON answer; a non-200 answer is an
    /// error carrying moto's.
    pub fn json_call(
        &self,
        service: &str,
        target: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, \
             SignedHeaders=content-type;host, Signature=0"
        );
        let mut response = self
            .agent()
            .post(format!("{}/", self.endpoint()))
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("X-Amz-Target", target)
            .header("Authorization", authorization)
            .send(body.to_string())
            .with_context(|| format!("{target} to moto at {}", self.endpoint()))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string()?;
        if status != 200 {
            bail!("{target} answered HTTP {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// GETs one of the strict moto's own routes (`/_okra/...`) as JSON.
    pub fn json_get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let mut response = self
            .agent()
            .get(format!("{}{path}", self.endpoint()))
            .call()
            .with_context(|| format!("GET {path}"))?;
        Ok(response.body_mut().read_json()?)
    }

    /// POSTs a Query-protocol call (`Action=...&Version=...&params...`) of `service` (the signing
    /// name: `ec2`, `elasticloadbalancing`, ...) to moto and returns the XML answer. moto does not
    /// check signatures; it routes by the credential scope of the `Authorization` header, which is
    /// sent with a dummy signature. A non-200 answer is an error carrying moto's XML.
    pub fn query(
        &self,
        service: &str,
        version: &str,
        action: &str,
        params: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        let mut pairs: Vec<(&str, &str)> = vec![("Action", action), ("Version", version)];
        pairs.extend_from_slice(params);
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, \
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
            .with_context(|| format!("{service} {action} to moto at {}", self.endpoint()))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading moto's answer to {service} {action}"))?;
        if status != 200 {
            bail!("{service} {action} answered HTTP {status}: {body}");
        }
        Ok(body)
    }

    /// Creates an application load balancer in `subnets` with an HTTP :80 listener whose default
    /// action answers 503 (no cluster serves yet), and returns `(load_balancer_arn,
    /// listener_arn)`.
    pub fn create_alb_with_listener(
        &self,
        name: &str,
        subnets: &[String],
    ) -> anyhow::Result<(String, String)> {
        const ELB: &str = "elasticloadbalancing";
        const V: &str = "2015-12-01";
        let mut owned = vec![("Name".to_string(), name.to_string())];
        owned.push(("Type".to_string(), "application".to_string()));
        for (i, s) in subnets.iter().enumerate() {
            owned.push((format!("Subnets.member.{}", i + 1), s.clone()));
        }
        let params: Vec<(&str, &str)> = owned
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let xml = self.query(ELB, V, "CreateLoadBalancer", &params)?;
        let lb = xml_values(&xml, "LoadBalancerArn")
            .into_iter()
            .next()
            .with_context(|| format!("no LoadBalancerArn in CreateLoadBalancer answer: {xml}"))?;
        let xml = self.query(
            ELB,
            V,
            "CreateListener",
            &[
                ("LoadBalancerArn", &lb),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("DefaultActions.member.1.Type", "fixed-response"),
                (
                    "DefaultActions.member.1.FixedResponseConfig.StatusCode",
                    "503",
                ),
                (
                    "DefaultActions.member.1.FixedResponseConfig.ContentType",
                    "text/plain",
                ),
                (
                    "DefaultActions.member.1.FixedResponseConfig.MessageBody",
                    "no cluster serves yet",
                ),
            ],
        )?;
        let listener = xml_values(&xml, "ListenerArn")
            .into_iter()
            .next()
            .with_context(|| format!("no ListenerArn in CreateListener answer: {xml}"))?;
        Ok((lb, listener))
    }

    /// Creates an EKS cluster (ACTIVE at once in moto) with `tags`, whose DescribeCluster shows
    /// `resourcesVpcConfig.vpcId` as AWS's does. AWS derives the VPC from the subnets; moto echoes
    /// the request's `resourcesVpcConfig` as sent, so the request carries the VPC too (the SDK's
    /// VpcConfigRequest has no vpcId field, hence a raw REST call; moto reads the service from the
    /// credential scope and does not check the signature).
    pub fn create_eks_cluster(
        &self,
        name: &str,
        subnets: &[String],
        vpc_id: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        let body = serde_json::json!({
            "name": name,
            "roleArn": format!("arn:aws:iam::{}:role/eks", crate::ACCOUNT_ID),
            "resourcesVpcConfig": {"subnetIds": subnets, "vpcId": vpc_id},
            "tags": tags,
        });
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/eks/aws4_request, \
             SignedHeaders=host, Signature=0"
        );
        let mut response = self
            .agent()
            .post(format!("{}/clusters", self.endpoint()))
            .header("Content-Type", "application/json")
            .header("Authorization", authorization)
            .send(body.to_string())
            .with_context(|| format!("EKS CreateCluster {name} to moto"))?;
        let status = response.status().as_u16();
        if status != 200 {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            bail!("EKS CreateCluster {name} answered HTTP {status}: {text}");
        }
        Ok(())
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
