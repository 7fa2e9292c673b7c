//! Reading the compose file: a generic, order-preserving `Node` tree (numbers kept as text, as
//! compose keeps them) with the positions of its nodes, for warnings at `file:line:col`.

use std::fmt;

use meme_api::position::{PathIndex, Split, split_documents};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// A YAML value of the compose file: mappings keep their order (services are imported in file
/// order), numbers are kept as text.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Node {
    Null,
    Bool(bool),
    /// An integer or float, as text.
    Num(String),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    pub(super) fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(super) fn as_map(&self) -> Option<&[(String, Node)]> {
        match self {
            Self::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// What the value is, for "expected a list, found a string".
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a boolean",
            Self::Num(_) => "a number",
            Self::Str(_) => "a string",
            Self::Seq(_) => "a list",
            Self::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

pub(super) struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Num(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Num(v.to_string()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Num(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Num(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Num(if v.is_finite() {
            format!("{v}")
        } else if v.is_nan() {
            ".nan".to_owned()
        } else if v > 0.0 {
            ".inf".to_owned()
        } else {
            "-.inf".to_owned()
        }))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let key = match key {
                Node::Str(s) | Node::Num(s) => s,
                Node::Bool(b) => b.to_string(),
                Node::Null => "null".to_owned(),
                Node::Seq(_) | Node::Map(_) => return Err(de::Error::custom("mapping keys must be scalars")),
            };
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// The parsed compose file and the positions of its nodes.
#[derive(Debug)]
pub(super) struct ComposeDoc {
    pub(super) root: Node,
    pub(super) index: PathIndex,
}

/// Parses the compose file: YAML 1.2 (`yes` is a string, as for compose), one document, with
/// the same alias-bomb budget as manifests. Errors carry `file:line:col`.
pub(super) fn parse_compose(text: &str, shown: &str) -> anyhow::Result<ComposeDoc> {
    // Two documents are enough to say "a single document, please".
    let Split { docs, error, .. } = split_documents(text, 2);
    if let Some(err) = error {
        anyhow::bail!("{shown}:{}:{}: YAML syntax: {}", err.pos.line, err.pos.column, err.message);
    }
    let mut docs: Vec<_> = docs.into_iter().filter(|d| !d.is_empty).collect();
    if docs.is_empty() {
        anyhow::bail!("{shown}: the file is empty: a compose file needs `services`");
    }
    if let Some(second) = docs.get(1) {
        anyhow::bail!(
            "{shown}:{}:{}: a second YAML document: a compose file is a single document",
            second.start.line,
            second.start.column
        );
    }
    let doc = docs.remove(0);
    // The manifests' options (strict booleans, alias-bomb budget), with numbers kept as text
    // where compose would: `0755`, `1_000`.
    let mut options = meme_api::load::yaml_options();
    options.leading_zero_numbers_as_strings = true;
    options.underscored_numbers_as_strings = true;
    let root: Node = serde_saphyr::from_str_with_options(&doc.text, options).map_err(|e| {
        let raw = e.to_string();
        let first = raw.lines().next().unwrap_or_default();
        let message = first.split(" at line ").next().unwrap_or(first);
        match e.location().filter(|l| l.line() > 0) {
            Some(l) => anyhow::anyhow!(
                "{shown}:{}:{}: {message}",
                l.line().saturating_add(u64::from(doc.line_offset)),
                l.column()
            ),
            None => anyhow::anyhow!("{shown}:{}:{}: {message}", doc.start.line, doc.start.column),
        }
    })?;
    match &root {
        Node::Map(_) if root.get("services").is_some() => {}
        Node::Map(_) => anyhow::bail!("{shown}: not a compose file: no top-level `services`"),
        other => anyhow::bail!(
            "{shown}:{}:{}: not a compose file: expected a mapping with `services`, found {}",
            doc.start.line,
            doc.start.column,
            other.kind()
        ),
    }
    Ok(ComposeDoc { root, index: doc.index })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_should_keep_order_and_yaml_12_scalars() {
        let doc = parse_compose("services:\n  b: {image: x, flag: yes, n: 0755, f: 0.50}\n  a: {}\n", "c.yml").unwrap();
        let services = doc.root.get("services").unwrap().as_map().unwrap();
        assert_eq!(services.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        let b = &services[0].1;
        assert_eq!(b.get("flag"), Some(&Node::Str("yes".into())));
        assert_eq!(b.get("n"), Some(&Node::Str("0755".into())));
        assert_eq!(b.get("f"), Some(&Node::Num("0.5".into())));
        let err = parse_compose("services:\n  a:\n    image: x\n   bad: [\n", "c.yml").unwrap_err().to_string();
        assert!(err.starts_with("c.yml:"), "{err}");
        assert!(parse_compose("- a\n", "c.yml").is_err());
        assert!(parse_compose("name: x\n", "c.yml").is_err());
    }
}
