//! Turns a parsed condition into nested closures, so evaluation walks no tree and looks up
//! each field once per use, straight in the MessagePack payload.

use std::sync::Arc;

use weir_plugin_sdk::msgpack;

use super::parse::{Ast, BinOp, Func};
use super::{Eval, Value};

pub(super) fn compile(ast: Ast) -> Eval {
    match ast {
        Ast::Null => Arc::new(|_| Value::Null),
        Ast::Bool(b) => Arc::new(move |_| Value::Bool(b)),
        Ast::Int(i) => Arc::new(move |_| Value::Int(i)),
        Ast::Float(f) => Arc::new(move |_| Value::Float(f)),
        // A string alone is no condition; as an operand it is taken by `Operand`.
        Ast::Str(_) => Arc::new(|_| Value::Other),
        Ast::Field(path) => Arc::new(move |payload| field(payload, &path)),
        Ast::Not(inner) => {
            let inner = compile(*inner);
            Arc::new(move |p| match inner(p) {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            })
        }
        Ast::Neg(inner) => {
            let inner = compile(*inner);
            Arc::new(move |p| match inner(p) {
                Value::Int(i) => i.checked_neg().map_or(Value::Null, Value::Int),
                Value::Float(f) => Value::Float(-f),
                _ => Value::Null,
            })
        }
        Ast::Binary(BinOp::And, l, r) => {
            let (l, r) = (compile(*l), compile(*r));
            Arc::new(move |p| Value::Bool(l(p) == Value::Bool(true) && r(p) == Value::Bool(true)))
        }
        Ast::Binary(BinOp::Or, l, r) => {
            let (l, r) = (compile(*l), compile(*r));
            Arc::new(move |p| Value::Bool(l(p) == Value::Bool(true) || r(p) == Value::Bool(true)))
        }
        Ast::Binary(op, l, r) => {
            let (l, r) = (Operand::new(*l), Operand::new(*r));
            Arc::new(move |p| binary(op, &l.get(p), &r.get(p)))
        }
        Ast::Call(func, args) => call(func, args),
    }
}

/// An operand: string literals are kept apart because a closure cannot hand out a borrow
/// of its own captures with the payload's lifetime.
enum Operand {
    Literal(String),
    Computed(Eval),
}

impl Operand {
    fn new(ast: Ast) -> Self {
        match ast {
            Ast::Str(s) => Self::Literal(s),
            other => Self::Computed(compile(other)),
        }
    }

    fn get<'s, 'a: 's>(&'s self, payload: &'a [u8]) -> Value<'s> {
        match self {
            Self::Literal(s) => Value::Str(s),
            Self::Computed(eval) => eval(payload),
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

fn call(func: Func, args: Vec<Ast>) -> Eval {
    if func == Func::Exists {
        let Some(Ast::Field(path)) = args.into_iter().next() else {
            unreachable!("the parser only lets exists take a field path");
        };
        return Arc::new(move |payload| {
            Value::Bool(matches!(msgpack::lookup(payload, &path), Ok(Some(_))))
        });
    }
    let mut operands = args.into_iter().map(Operand::new);
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
