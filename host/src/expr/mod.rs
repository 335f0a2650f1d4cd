//! The condition language of filters, routes, `having` and pattern steps:
//! `amount > 50 && user.country == "NL"`.
//!
//! A condition is parsed once, when the pipeline loads, into a tree of closures that read
//! fields straight out of the MessagePack payload (no decoding of the whole event).
//!
//! - Literals: numbers, `"strings"` or `'strings'`, `true`, `false`, `null`.
//! - Fields: `name` or a dotted path `user.id`; a missing field is `null`. A condition
//!   parsed with [`Condition::parse_with`] also reads other events by name: `first.amount`
//!   is `amount` of the event the caller binds to `first` (`null` when none is bound).
//! - Operators, loosest first: `||`, `&&`, `!`, comparisons (`== != < <= > >=`), `+ -`,
//!   `* / %`, unary `-`; parentheses group.
//! - Functions: `exists(path)`, `contains(text, part)`, `starts_with(text, prefix)`,
//!   `ends_with(text, suffix)`, `len(text)`.
//! - Numbers compare by value whatever their encoding; strings compare by bytes; an order
//!   comparison between other kinds, or with `null`, is false. `==` between different kinds
//!   is false. A condition holds when it evaluates to `true`; any other value means no.
//!
//! ```
//! use weir::expr::Condition;
//! let c = Condition::parse("amount > 50 && user.country == \"NL\"").unwrap();
//! let event = weir::format::json_to_msgpack(br#"{"amount":60,"user":{"country":"NL"}}"#).unwrap();
//! assert!(c.holds(&event));
//! ```

mod compile;
mod parse;

use std::fmt;
use std::sync::Arc;

pub use parse::ParseError;

/// A value met while evaluating a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `null`, or a field that is not there.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string borrowed from the payload or the condition.
    Str(&'a str),
    /// Anything else in a payload (arrays, maps, binary): only `exists` sees it.
    Other,
}

/// What a condition reads: the event's payload, and other events by the position of their
/// name (see [`Condition::parse_with`]); an empty payload stands for "none".
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The event's payload.
    pub payload: &'a [u8],
    /// Other events' payloads, by name position.
    pub others: &'a [&'a [u8]],
}

impl<'a> Scope<'a> {
    fn other(&self, slot: usize) -> &'a [u8] {
        self.others.get(slot).copied().unwrap_or_default()
    }
}

type Eval = Arc<dyn for<'a> Fn(&Scope<'a>) -> Value<'a> + Send + Sync>;

/// A parsed condition, cheap to clone and share between workers.
#[derive(Clone)]
pub struct Condition {
    source: Arc<str>,
    eval: Eval,
    reads_others: u64,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

impl Condition {
    /// Parses `source`.
    ///
    /// # Errors
    /// A [`ParseError`] naming the column and what was expected there.
    pub fn parse(source: &str) -> Result<Self, ParseError> {
        Self::parse_with(source, &[])
    }

    /// Parses `source`, in which a path whose first part is one of `names` reads the rest
    /// of the path in the other event bound to that name (see [`Scope`]).
    ///
    /// # Errors
    /// A [`ParseError`] naming the column and what was expected there.
    pub fn parse_with(source: &str, names: &[String]) -> Result<Self, ParseError> {
        let ast = parse::parse(source)?;
        let mut names = compile::Names { names, used: 0 };
        let eval = compile::compile(ast, &mut names);
        Ok(Self {
            source: source.into(),
            eval,
            reads_others: names.used,
        })
    }

    /// Whether the condition holds for a MessagePack `payload`. A payload that is not
    /// MessagePack has only missing fields.
    pub fn holds(&self, payload: &[u8]) -> bool {
        self.holds_in(&Scope {
            payload,
            others: &[],
        })
    }

    /// Whether the condition holds in `scope`.
    pub fn holds_in(&self, scope: &Scope<'_>) -> bool {
        (self.eval)(scope) == Value::Bool(true)
    }

    /// Which named events it reads, as bits by name position (names past 63 share bit 63).
    pub fn reads_others(&self) -> u64 {
        self.reads_others
    }

    /// The value of the expression for `payload`.
    pub fn evaluate<'a>(&self, payload: &'a [u8]) -> Value<'a> {
        (self.eval)(&Scope {
            payload,
            others: &[],
        })
    }

    /// The text it was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::json_to_msgpack;

    fn holds(cond: &str, json: &str) -> bool {
        let payload = json_to_msgpack(json.as_bytes()).unwrap();
        Condition::parse(cond).unwrap().holds(&payload)
    }

    #[test]
    fn compares_numbers_across_encodings() {
        assert!(holds("amount > 50", r#"{"amount":60}"#));
        assert!(!holds("amount > 50", r#"{"amount":50}"#));
        assert!(holds("amount >= 50.0", r#"{"amount":50}"#));
        assert!(holds("amount == 1.5", r#"{"amount":1.5}"#));
        assert!(holds("-amount < -1", r#"{"amount":2}"#));
        assert!(holds("amount * 2 + 1 == 7", r#"{"amount":3}"#));
        assert!(holds("amount % 2 == 1", r#"{"amount":3}"#));
        assert!(holds("amount / 2 == 1.5", r#"{"amount":3}"#));
    }

    #[test]
    fn reads_nested_fields_and_strings() {
        let e = r#"{"amount":60,"user":{"country":"NL","name":"Ann"}}"#;
        assert!(holds(r#"amount > 50 && user.country == "NL""#, e));
        assert!(!holds(r#"amount > 50 && user.country == 'DE'"#, e));
        assert!(holds(r#"user.country != "DE" || amount < 0"#, e));
        assert!(holds(
            r#"starts_with(user.name, "A") && len(user.name) == 3"#,
            e
        ));
        assert!(holds(
            r#"contains(user.name, "nn") && ends_with(user.name, "n")"#,
            e
        ));
        assert!(holds(r#"!(amount < 10)"#, e));
    }

    #[test]
    fn missing_fields_are_null_and_never_ordered() {
        let e = r#"{"amount":60}"#;
        assert!(!holds("missing > 1", e));
        assert!(!holds("missing < 1", e));
        assert!(holds("missing == null", e));
        assert!(holds("!exists(missing) && exists(amount)", e));
        assert!(!holds("amount > \"a\"", e));
        let not_msgpack = Condition::parse("amount > 1").unwrap();
        assert!(!not_msgpack.holds(b"\xc1 not msgpack"));
    }

    #[test]
    fn named_events_are_read_by_their_name() {
        let names = ["first".to_owned(), "prev".to_owned()];
        let c = Condition::parse_with("amount > first.amount * 2 && exists(prev.amount)", &names)
            .unwrap();
        assert_eq!(c.reads_others(), 0b11);
        let first = json_to_msgpack(br#"{"amount":10}"#).unwrap();
        let now = json_to_msgpack(br#"{"amount":25}"#).unwrap();
        let others: [&[u8]; 2] = [&first, &first];
        assert!(c.holds_in(&Scope {
            payload: &now,
            others: &others
        }));
        let unbound: [&[u8]; 2] = [&first, &[]];
        assert!(!c.holds_in(&Scope {
            payload: &now,
            others: &unbound
        }));
        // Without names, `first.amount` is a path in the event itself.
        let plain = Condition::parse("first.amount == 1").unwrap();
        assert_eq!(plain.reads_others(), 0);
        assert!(plain.holds(&json_to_msgpack(br#"{"first":{"amount":1}}"#).unwrap()));
    }

    #[test]
    fn precedence_is_conventional() {
        assert!(holds("1 + 2 * 3 == 7", "{}"));
        assert!(holds("true || false && false", "{}"));
        assert!(holds("(1 + 2) * 3 == 9", "{}"));
    }

    #[test]
    fn errors_name_the_column_and_the_expectation() {
        let err = Condition::parse("amount > ").unwrap_err().to_string();
        assert_eq!(err, "column 10: expected a value, found the end");
        let err = Condition::parse("amount >> 5").unwrap_err().to_string();
        assert_eq!(err, "column 9: expected a value, found `>`");
        let err = Condition::parse("amount = 5").unwrap_err().to_string();
        assert_eq!(
            err,
            "column 8: `=` is not an operator: write `==` to compare"
        );
        let err = Condition::parse("nope(amount)").unwrap_err().to_string();
        assert!(err.contains("unknown function `nope`"), "{err}");
        let err = Condition::parse("(amount > 1").unwrap_err().to_string();
        assert_eq!(err, "column 12: expected `)`, found the end");
        let err = Condition::parse("amount > 1 2").unwrap_err().to_string();
        assert_eq!(err, "column 12: expected an operator or the end, found `2`");
    }
}
