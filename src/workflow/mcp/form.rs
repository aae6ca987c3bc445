//! A server's elicitation as a question a person can answer in one line,
//! and that line back as the fields the server asked for. Pure.
//!
//! A form of one yes/no or one-of field becomes a choice; any other form
//! is answered `field=value; field=value` (a field left out takes its
//! default), or as a JSON object. `decline` declines; `cancel` cancels.

use serde_json::{Map, Value};

use crate::mcp::{Elicitation, Elicited};
use crate::spec::Choice;

/// What declines, as an answer and as the default of an unanswered question.
pub(super) const DECLINE: &str = "decline";
const CANCEL: &str = "cancel";

/// One field of the form.
struct Field {
    name: String,
    kind: Kind,
    description: String,
    required: bool,
    default: Option<Value>,
}

enum Kind {
    Text,
    Boolean,
    Integer,
    Number,
    /// One of these values (their labels beside them).
    OneOf(Vec<(String, String)>),
    /// Some of these values.
    SomeOf(Vec<String>),
}

/// The question to ask and its choices (none: a line of text).
pub(super) struct Form {
    server: String,
    message: String,
    url: Option<String>,
    fields: Vec<Field>,
}

impl Form {
    pub(super) fn of(request: &Elicitation) -> Form {
        let schema = request.schema.clone().unwrap_or(Value::Null);
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let fields = schema["properties"]
            .as_object()
            .map(|props| {
                props
                    .iter()
                    .map(|(name, p)| Field {
                        name: name.clone(),
                        kind: kind_of(p),
                        description: p["description"]
                            .as_str()
                            .or(p["title"].as_str())
                            .unwrap_or_default()
                            .to_string(),
                        required: required.contains(&name.as_str()),
                        default: p.get("default").cloned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Form {
            server: request.server.clone(),
            message: request.message.clone(),
            url: request.url.clone(),
            fields,
        }
    }

    /// The lone field a choice answers, if the form is one.
    fn single_choice(&self) -> Option<&Field> {
        match self.fields.as_slice() {
            [f] if matches!(f.kind, Kind::Boolean | Kind::OneOf(_)) => Some(f),
            _ => None,
        }
    }

    pub(super) fn question(&self) -> String {
        let mut q = format!("MCP server `{}` asks: {}", self.server, self.message.trim());
        if let Some(url) = &self.url {
            q.push_str(&format!(
                "\nOpen {url}, then answer `done` (or `{DECLINE}`)."
            ));
            return q;
        }
        if self.single_choice().is_some() {
            return q;
        }
        for f in &self.fields {
            q.push_str(&format!(
                "\n- {}{} ({})",
                f.name,
                if f.required { "*" } else { "" },
                f.kind_text()
            ));
            if !f.description.is_empty() {
                q.push_str(&format!(": {}", f.description));
            }
            if let Some(d) = &f.default {
                q.push_str(&format!(" [default {}]", plain(d)));
            }
        }
        q.push_str(&format!(
            "\nAnswer `field=value; field=value` (* must be given; others left out take their default), or `{DECLINE}`."
        ));
        q
    }

    pub(super) fn options(&self) -> Vec<Choice> {
        let choice = |value: &str, label: &str| Choice {
            value: value.to_string(),
            label: label.to_string(),
        };
        let mut out = match (&self.url, self.single_choice().map(|f| &f.kind)) {
            (Some(_), _) => vec![choice("done", "Done")],
            (None, Some(Kind::Boolean)) => vec![choice("yes", "Yes"), choice("no", "No")],
            (None, Some(Kind::OneOf(values))) => values.iter().map(|(v, l)| choice(v, l)).collect(),
            _ => return Vec::new(),
        };
        out.push(choice(DECLINE, "Decline"));
        out
    }

    /// The reply an answer gives the server. An answer that does not fit
    /// the form declines (the server learns nothing it did not ask for).
    pub(super) fn reply(&self, answer: &str) -> Elicited {
        let answer = answer.trim();
        if answer.eq_ignore_ascii_case(DECLINE) {
            return Elicited::Decline;
        }
        if answer.eq_ignore_ascii_case(CANCEL) || answer.is_empty() {
            return Elicited::Cancel;
        }
        if self.url.is_some() {
            return Elicited::Accept(Map::new());
        }
        if let Some(f) = self.single_choice() {
            return match f.value(answer) {
                Some(v) => Elicited::Accept(Map::from_iter([(f.name.clone(), v)])),
                None => Elicited::Decline,
            };
        }
        let given: Map<String, Value> = match serde_json::from_str::<Value>(answer) {
            Ok(Value::Object(map)) => map,
            _ => {
                let mut map = Map::new();
                for pair in answer.split(';') {
                    let Some((name, value)) = pair.split_once('=') else {
                        continue;
                    };
                    let name = name.trim();
                    let Some(f) = self.fields.iter().find(|f| f.name == name) else {
                        continue;
                    };
                    match f.value(value.trim()) {
                        Some(v) => {
                            map.insert(f.name.clone(), v);
                        }
                        None => return Elicited::Decline,
                    }
                }
                map
            }
        };
        let mut content = Map::new();
        for f in &self.fields {
            match given.get(&f.name).cloned().or_else(|| f.default.clone()) {
                Some(v) => {
                    content.insert(f.name.clone(), v);
                }
                None if f.required => return Elicited::Decline,
                None => {}
            }
        }
        Elicited::Accept(content)
    }
}

impl Field {
    fn kind_text(&self) -> String {
        match &self.kind {
            Kind::Text => "text".into(),
            Kind::Boolean => "yes/no".into(),
            Kind::Integer => "a whole number".into(),
            Kind::Number => "a number".into(),
            Kind::OneOf(values) => format!(
                "one of {}",
                values
                    .iter()
                    .map(|(v, _)| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Kind::SomeOf(values) => format!("some of {}, with commas", values.join(", ")),
        }
    }

    /// A typed value from what was written, if it fits.
    fn value(&self, text: &str) -> Option<Value> {
        match &self.kind {
            Kind::Text => Some(Value::String(text.to_string())),
            Kind::Boolean => match text.to_ascii_lowercase().as_str() {
                "yes" | "y" | "true" | "1" => Some(Value::Bool(true)),
                "no" | "n" | "false" | "0" => Some(Value::Bool(false)),
                _ => None,
            },
            Kind::Integer => text.parse::<i64>().ok().map(Value::from),
            Kind::Number => text.parse::<f64>().ok().map(Value::from),
            Kind::OneOf(values) => values
                .iter()
                .find(|(v, l)| v == text || l.eq_ignore_ascii_case(text))
                .map(|(v, _)| Value::String(v.clone())),
            Kind::SomeOf(values) => {
                let picked: Option<Vec<Value>> = text
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| {
                        values
                            .iter()
                            .find(|v| *v == t)
                            .map(|v| Value::String(v.clone()))
                    })
                    .collect();
                picked.map(Value::Array)
            }
        }
    }
}

/// What a field's schema asks for.
fn kind_of(p: &Value) -> Kind {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let titled = |v: &Value| -> Vec<(String, String)> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| {
                        let value = o["const"].as_str()?;
                        Some((
                            value.to_string(),
                            o["title"].as_str().unwrap_or(value).to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    match p["type"].as_str() {
        Some("boolean") => Kind::Boolean,
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("array") => {
            let items = &p["items"];
            let mut values = strings(&items["enum"]);
            if values.is_empty() {
                values = titled(
                    items
                        .get("anyOf")
                        .or(items.get("oneOf"))
                        .unwrap_or(&Value::Null),
                )
                .into_iter()
                .map(|(v, _)| v)
                .collect();
            }
            Kind::SomeOf(values)
        }
        _ => {
            let values = strings(&p["enum"]);
            if !values.is_empty() {
                let names = strings(&p["enumNames"]);
                return Kind::OneOf(
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            (
                                v.clone(),
                                names.get(i).cloned().unwrap_or_else(|| v.clone()),
                            )
                        })
                        .collect(),
                );
            }
            let titled = titled(p.get("oneOf").unwrap_or(&Value::Null));
            if titled.is_empty() {
                Kind::Text
            } else {
                Kind::OneOf(titled)
            }
        }
    }
}

/// A default as a person writes it.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(schema: Value) -> Form {
        Form::of(&Elicitation {
            server: "s".into(),
            message: "Tell me".into(),
            schema: Some(schema),
            url: None,
        })
    }

    #[test]
    fn a_lone_yes_no_field_is_a_choice() {
        let f = form(json!({"type": "object", "properties": {"ok": {"type": "boolean"}}}));
        let values: Vec<String> = f.options().into_iter().map(|c| c.value).collect();
        assert_eq!(values, ["yes", "no", "decline"]);
        assert_eq!(
            f.reply("yes"),
            Elicited::Accept(Map::from_iter([("ok".into(), json!(true))]))
        );
        assert_eq!(f.reply("decline"), Elicited::Decline);
        assert_eq!(f.reply("maybe"), Elicited::Decline);
    }

    #[test]
    fn a_form_is_answered_field_by_field_with_defaults_for_the_rest() {
        let f = form(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "Your name"},
                "age": {"type": "integer", "default": 42},
                "pet": {"type": "string", "enum": ["p1", "p2"], "enumNames": ["Cat", "Dog"]},
                "tools": {"type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]}},
                "ok": {"type": "boolean"}
            },
            "required": ["name"]
        }));
        assert!(f.options().is_empty());
        let q = f.question();
        assert!(q.contains("- name* (text): Your name"), "{q}");
        assert!(q.contains("- age (a whole number) [default 42]"), "{q}");
        assert!(q.contains("one of p1, p2"), "{q}");
        let Elicited::Accept(c) = f.reply("name=Ada Lovelace; pet=Dog; tools=a, c; ok=yes") else {
            panic!()
        };
        assert_eq!(c["name"], "Ada Lovelace");
        assert_eq!(c["age"], 42);
        assert_eq!(c["pet"], "p2");
        assert_eq!(c["tools"], json!(["a", "c"]));
        assert_eq!(c["ok"], true);
        // A required field left out, or a value that does not fit, declines.
        assert_eq!(f.reply("age=3"), Elicited::Decline);
        assert_eq!(f.reply("name=x; age=old"), Elicited::Decline);
        // JSON works too.
        assert!(matches!(f.reply(r#"{"name": "Bo"}"#), Elicited::Accept(_)));
        assert_eq!(f.reply("cancel"), Elicited::Cancel);
    }

    #[test]
    fn a_url_is_opened_and_said_done() {
        let f = Form::of(&Elicitation {
            server: "s".into(),
            message: "Sign in".into(),
            schema: None,
            url: Some("https://example.com/login".into()),
        });
        assert!(f.question().contains("https://example.com/login"));
        assert_eq!(f.reply("done"), Elicited::Accept(Map::new()));
        assert_eq!(f.reply("decline"), Elicited::Decline);
    }
}
