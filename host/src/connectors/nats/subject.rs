//! Subjects made per event from a template: `orders.{region}.{kind}` takes `region` and
//! `kind` from the payload (dotted paths reach into maps).

use std::borrow::Cow;

use weir_plugin_sdk::msgpack;

/// A parsed subject template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(String),
}

impl SubjectTemplate {
    /// Parses `text`.
    ///
    /// # Errors
    /// Unbalanced braces, an empty placeholder, whitespace, or wildcards (a publish subject
    /// names one subject).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the subject is empty".into());
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let (before, after) = rest.split_at(open);
            let Some(close) = after.find('}') else {
                return Err(format!("{text:?}: a '{{' is never closed"));
            };
            let field = &after[1..close];
            if field.is_empty() || field.contains('{') {
                return Err(format!(
                    "{text:?}: placeholders are {{field}} with a field name"
                ));
            }
            if !before.is_empty() {
                parts.push(Part::Text(before.to_owned()));
            }
            parts.push(Part::Field(field.to_owned()));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        for part in &parts {
            if let Part::Text(t) = part {
                check_text(t).map_err(|e| format!("{text:?}: {e}"))?;
            }
        }
        Ok(Self { parts })
    }

    /// The subject for `payload` (MessagePack).
    ///
    /// # Errors
    /// A placeholder's field that is missing, not a string or number, or that would make
    /// the subject invalid.
    pub fn render<'a>(&'a self, payload: &[u8]) -> Result<Cow<'a, str>, String> {
        if let [Part::Text(t)] = self.parts.as_slice() {
            return Ok(Cow::Borrowed(t));
        }
        let mut subject = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => subject.push_str(t),
                Part::Field(field) => {
                    let value = match msgpack::lookup(payload, field) {
                        Ok(Some(msgpack::Value::Str(s))) => String::from_utf8_lossy(s).into_owned(),
                        Ok(Some(msgpack::Value::Int(n))) => n.to_string(),
                        Ok(Some(msgpack::Value::UInt(n))) => n.to_string(),
                        Ok(Some(msgpack::Value::Bool(b))) => b.to_string(),
                        Ok(Some(_)) => {
                            return Err(format!(
                                "subject field {field:?} is not a string, number or boolean"
                            ));
                        }
                        Ok(None) => return Err(format!("subject field {field:?} is missing")),
                        Err(e) => return Err(format!("payload is not MessagePack: {e}")),
                    };
                    if value.is_empty() {
                        return Err(format!("subject field {field:?} is empty"));
                    }
                    check_text(&value).map_err(|e| format!("subject field {field:?}: {e}"))?;
                    subject.push_str(&value);
                }
            }
        }
        Ok(Cow::Owned(subject))
    }
}

fn check_text(text: &str) -> Result<(), String> {
    if text.chars().any(char::is_whitespace) {
        return Err("subjects cannot hold whitespace".into());
    }
    if text.contains(['*', '>']) {
        return Err("a published subject cannot hold wildcards".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(json: &str) -> Vec<u8> {
        crate::format::json_to_msgpack(json.as_bytes()).expect("json")
    }

    #[test]
    fn fills_placeholders_from_the_payload() {
        let t = SubjectTemplate::parse("orders.{region}.{n}").expect("template");
        let p = payload(r#"{"region":"eu","n":7}"#);
        assert_eq!(t.render(&p).expect("subject"), "orders.eu.7");
        let plain = SubjectTemplate::parse("orders").expect("template");
        assert_eq!(plain.render(&p).expect("subject"), "orders");
    }

    #[test]
    fn refuses_what_cannot_be_a_subject() {
        for bad in ["", "a.{", "a.{}", "a b", "a.*", "a.>"] {
            assert!(SubjectTemplate::parse(bad).is_err(), "{bad:?}");
        }
        let t = SubjectTemplate::parse("x.{region}").expect("template");
        let missing = t.render(&payload(r#"{"n":1}"#)).expect_err("missing");
        assert!(missing.contains("region"), "{missing}");
        assert!(t.render(&payload(r#"{"region":"a b"}"#)).is_err());
    }
}
