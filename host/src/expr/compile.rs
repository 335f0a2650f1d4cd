//! Turns a parsed condition into nested closures, so evaluation walks no tree and looks up
//! each field once per use, straight in the MessagePack payload.

use std::sync::Arc;

use weir_plugin_sdk::msgpack;

use super::parse::{Ast, BinOp, Func};
use super::{Eval, Scope, Value};

/// Names whose fields are read from other events of the scope: a path `name.rest` with
/// `name` the i-th of them reads `rest` in the scope's i-th other event.
pub(super) struct Names<'n> {
    pub names: &'n [String],
    /// Which of them the condition reads, as bits.
    pub used: u64,
}

impl Names<'_> {
    /// The other event and the path in it that `path` refers to, if it names one.
    fn resolve(&mut self, path: &str) -> Option<(usize, String)> {
        let (head, rest) = path.split_once('.')?;
        let slot = self.names.iter().position(|n| n == head)?;
        self.used |= 1u64 << slot.min(63);
        Some((slot, rest.to_owned()))
    }
}

pub(super) fn compile(ast: Ast, names: &mut Names<'_>) -> Eval {
    match ast {
        Ast::Null => Arc::new(|_| Value::Null),
        Ast::Bool(b) => Arc::new(move |_| Value::Bool(b)),
        Ast::Int(i) => Arc::new(move |_| Value::Int(i)),
        Ast::Float(f) => Arc::new(move |_| Value::Float(f)),
        // A string alone is no condition; as an operand it is taken by `Operand`.
        Ast::Str(_) => Arc::new(|_| Value::Other),
        Ast::Field(path) => match names.resolve(&path) {
            Some((slot, rest)) => Arc::new(move |scope| field(scope.other(slot), &rest)),
            None => Arc::new(move |scope| field(scope.payload, &path)),
        },
        Ast::Not(inner) => {
            let inner = compile(*inner, names);
            Arc::new(move |p| match inner(p) {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            })
        }
        Ast::Neg(inner) => {
            let inner = compile(*inner, names);
            Arc::new(move |p| match inner(p) {
                Value::Int(i) => i.checked_neg().map_or(Value::Null, Value::Int),
                Value::Float(f) => Value::Float(-f),
                _ => Value::Null,
            })
        }
        Ast::Binary(BinOp::And, l, r) => {
            let (l, r) = (compile(*l, names), compile(*r, names));
            Arc::new(move |p| Value::Bool(l(p) == Value::Bool(true) && r(p) == Value::Bool(true)))
        }
        Ast::Binary(BinOp::Or, l, r) => {
            let (l, r) = (compile(*l, names), compile(*r, names));
            Arc::new(move |p| Value::Bool(l(p) == Value::Bool(true) || r(p) == Value::Bool(true)))
        }
        Ast::Binary(op, l, r) => {
            let (l, r) = (Operand::new(*l, names), Operand::new(*r, names));
            Arc::new(move |p| binary(op, &l.get(p), &r.get(p)))
        }
        Ast::Call(func, args) => call(func, args, names),
    }
}

/// An operand: string literals are kept apart because a closure cannot hand out a borrow
/// of its own captures with the payload's lifetime.
enum Operand {
    Literal(String),
    Computed(Eval),
}

impl Operand {
    fn new(ast: Ast, names: &mut Names<'_>) -> Self {
        match ast {
            Ast::Str(s) => Self::Literal(s),
            other => Self::Computed(compile(other, names)),
        }
    }

    fn get<'s, 'a: 's>(&'s self, scope: &Scope<'a>) -> Value<'s> {
        match self {
            Self::Literal(s) => Value::Str(s),
            Self::Computed(eval) => eval(scope),
        }
    }
}

fn field<'a>(payload: &'a [u8], path: &str) -> Value<'a> {
    match msgpack::lookup(payload, path) {
        Ok(Some(value)) => match value {
            msgpack::Value::Nil => Value::Null,
            msgpack::Value::Bool(b) => Value::Bool(b),
            msgpack::Value::Int(i) => Value::Int(i),
            msgpack::Value::UInt(u) => i64::try_from(u).map_or(Value::Float(u as f64), Value::Int),
            msgpack::Value::Float(f) => Value::Float(f),
            msgpack::Value::Str(_) => value.as_str().map_or(Value::Other, Value::Str),
            _ => Value::Other,
        },
        Ok(None) | Err(_) => Value::Null,
    }
}

fn number(v: &Value<'_>) -> Option<f64> {
    match *v {
        Value::Int(i) => Some(i as f64),
        Value::Float(f) => Some(f),
        _ => None,
    }
}

fn binary(op: BinOp, l: &Value<'_>, r: &Value<'_>) -> Value<'static> {
    use std::cmp::Ordering;
    let order = || -> Option<Ordering> {
        match (l, r) {
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
            _ => number(l)?.partial_cmp(&number(r)?),
        }
    };
    let equal = || match (l, r) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Str(a), Value::Str(b)) => a == b,
        _ => order() == Some(Ordering::Equal),
    };
    match op {
        BinOp::Eq => Value::Bool(equal()),
        BinOp::Ne => Value::Bool(!equal()),
        BinOp::Lt => Value::Bool(order() == Some(Ordering::Less)),
        BinOp::Le => Value::Bool(matches!(order(), Some(Ordering::Less | Ordering::Equal))),
        BinOp::Gt => Value::Bool(order() == Some(Ordering::Greater)),
        BinOp::Ge => Value::Bool(matches!(order(), Some(Ordering::Greater | Ordering::Equal))),
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => arithmetic(op, l, r),
        BinOp::And | BinOp::Or => unreachable!("short-circuit operators are compiled apart"),
    }
}

fn arithmetic(op: BinOp, l: &Value<'_>, r: &Value<'_>) -> Value<'static> {
    if let (Value::Int(a), Value::Int(b)) = (l, r) {
        let exact = match op {
            BinOp::Add => a.checked_add(*b),
            BinOp::Sub => a.checked_sub(*b),
            BinOp::Mul => a.checked_mul(*b),
            BinOp::Rem => a.checked_rem(*b),
            // Integer division would surprise: 3 / 2 is 1.5 here, as in JSON's numbers.
            _ => None,
        };
        if let Some(v) = exact {
            return Value::Int(v);
        }
        if op == BinOp::Rem {
            return Value::Null;
        }
    }
    let (Some(a), Some(b)) = (number(l), number(r)) else {
        return Value::Null;
    };
    Value::Float(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        _ => a % b,
    })
}

fn call(func: Func, args: Vec<Ast>, names: &mut Names<'_>) -> Eval {
    if func == Func::Exists {
        let Some(Ast::Field(path)) = args.into_iter().next() else {
            unreachable!("the parser only lets exists take a field path");
        };
        let exists = |payload: &[u8], path: &str| {
            Value::Bool(matches!(msgpack::lookup(payload, path), Ok(Some(_))))
        };
        return match names.resolve(&path) {
            Some((slot, rest)) => Arc::new(move |scope| exists(scope.other(slot), &rest)),
            None => Arc::new(move |scope| exists(scope.payload, &path)),
        };
    }
    let mut operands = args.into_iter().map(|a| Operand::new(a, names));
    let null = || Operand::Computed(Arc::new(|_| Value::Null));
    let first = operands.next().unwrap_or_else(null);
    if func == Func::Len {
        return Arc::new(move |p| match first.get(p) {
            Value::Str(s) => Value::Int(s.chars().count() as i64),
            _ => Value::Null,
        });
    }
    let second = operands.next().unwrap_or_else(null);
    Arc::new(move |p| match (first.get(p), second.get(p)) {
        (Value::Str(text), Value::Str(part)) => Value::Bool(match func {
            Func::Contains => text.contains(part),
            Func::StartsWith => text.starts_with(part),
            _ => text.ends_with(part),
        }),
        _ => Value::Null,
    })
}
