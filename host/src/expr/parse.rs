//! Tokens and the recursive-descent parser of conditions.

use std::fmt;

/// A condition that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ParseError {
    /// 1-based column (in characters) where the problem starts.
    pub column: usize,
    /// What was expected and what was found.
    pub message: String,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// Built-in functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
    Exists,
    Contains,
    StartsWith,
    EndsWith,
    Len,
}

impl Func {
    fn named(name: &str) -> Option<(Self, usize)> {
        Some(match name {
            "exists" => (Self::Exists, 1),
            "contains" => (Self::Contains, 2),
            "starts_with" => (Self::StartsWith, 2),
            "ends_with" => (Self::EndsWith, 2),
            "len" => (Self::Len, 1),
            _ => return None,
        })
    }
}

/// The parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ast {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Field(String),
    Not(Box<Ast>),
    Neg(Box<Ast>),
    Binary(BinOp, Box<Ast>, Box<Ast>),
    Call(Func, Vec<Ast>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(String),
    Str(String),
    Ident(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Number(n) => write!(f, "`{n}`"),
            Token::Str(s) => write!(f, "{s:?}"),
            Token::Ident(i) => write!(f, "`{i}`"),
            Token::Op(op) => write!(f, "`{op}`"),
            Token::Open => f.write_str("`(`"),
            Token::Close => f.write_str("`)`"),
            Token::Comma => f.write_str("`,`"),
        }
    }
}

const OPERATORS: [&str; 15] = [
    "||", "&&", "==", "!=", "<=", ">=", "<", ">", "!", "+", "-", "*", "/", "%", "=",
];

fn tokenize(source: &str) -> Result<Vec<(usize, Token)>, ParseError> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == '_')
            {
                i += 1;
            }
            tokens.push((
                column,
                Token::Number(chars[start..i].iter().filter(|&&c| c != '_').collect()),
            ));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            tokens.push((column, Token::Ident(chars[start..i].iter().collect())));
        } else if c == '"' || c == '\'' {
            i += 1;
            let mut text = String::new();
            loop {
                match chars.get(i) {
                    None => {
                        return Err(ParseError {
                            column,
                            message: format!("string not closed: add a {c}"),
                        });
                    }
                    Some(&q) if q == c => break,
                    Some('\\') => {
                        i += 1;
                        match chars.get(i) {
                            Some('n') => text.push('\n'),
                            Some('t') => text.push('\t'),
                            Some(&other) => text.push(other),
                            None => continue,
                        }
                    }
                    Some(&other) => text.push(other),
                }
                i += 1;
            }
            i += 1;
            tokens.push((column, Token::Str(text)));
        } else if c == '(' {
            tokens.push((column, Token::Open));
            i += 1;
        } else if c == ')' {
            tokens.push((column, Token::Close));
            i += 1;
        } else if c == ',' {
            tokens.push((column, Token::Comma));
            i += 1;
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(op) = OPERATORS.iter().find(|op| rest.starts_with(**op)) else {
                return Err(ParseError {
                    column,
                    message: format!("unexpected character `{c}`"),
                });
            };
            if *op == "=" {
                return Err(ParseError {
                    column,
                    message: "`=` is not an operator: write `==` to compare".into(),
                });
            }
            i += op.len();
            tokens.push((column, Token::Op(op)));
        }
    }
    Ok(tokens)
}

pub(super) fn parse(source: &str) -> Result<Ast, ParseError> {
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        end: source.chars().count() + 1,
    };
    let ast = parser.or()?;
    if let Some((column, token)) = parser.tokens.get(parser.at) {
        return Err(ParseError {
            column: *column,
            message: format!("expected an operator or the end, found {token}"),
        });
    }
    Ok(ast)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    end: usize,
}

impl Parser {
    fn peek_op(&self) -> Option<&'static str> {
        match self.tokens.get(self.at) {
            Some((_, Token::Op(op))) => Some(op),
            _ => None,
        }
    }

    fn error_here(&self, expected: &str) -> ParseError {
        match self.tokens.get(self.at) {
            Some((column, token)) => ParseError {
                column: *column,
                message: format!("expected {expected}, found {token}"),
            },
            None => ParseError {
                column: self.end,
                message: format!("expected {expected}, found the end"),
            },
        }
    }

    fn binary_level(
        &mut self,
        ops: &[(&str, BinOp)],
        next: fn(&mut Self) -> Result<Ast, ParseError>,
    ) -> Result<Ast, ParseError> {
        let mut left = next(self)?;
        while let Some(op) = self.peek_op() {
            let Some((_, bin)) = ops.iter().find(|(text, _)| *text == op) else {
                break;
            };
            self.at += 1;
            let right = next(self)?;
            left = Ast::Binary(*bin, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Ast, ParseError> {
        self.binary_level(&[("||", BinOp::Or)], Self::and)
    }

    fn and(&mut self) -> Result<Ast, ParseError> {
        self.binary_level(&[("&&", BinOp::And)], Self::not)
    }

    fn not(&mut self) -> Result<Ast, ParseError> {
        if self.peek_op() == Some("!") {
            self.at += 1;
            return Ok(Ast::Not(Box::new(self.not()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Ast, ParseError> {
        let left = self.sum()?;
        let op = match self.peek_op() {
            Some("==") => BinOp::Eq,
            Some("!=") => BinOp::Ne,
            Some("<") => BinOp::Lt,
            Some("<=") => BinOp::Le,
            Some(">") => BinOp::Gt,
            Some(">=") => BinOp::Ge,
            _ => return Ok(left),
        };
        self.at += 1;
        let right = self.sum()?;
        Ok(Ast::Binary(op, Box::new(left), Box::new(right)))
    }

    fn sum(&mut self) -> Result<Ast, ParseError> {
        self.binary_level(&[("+", BinOp::Add), ("-", BinOp::Sub)], Self::product)
    }

    fn product(&mut self) -> Result<Ast, ParseError> {
        self.binary_level(
            &[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Rem)],
            Self::unary,
        )
    }

    fn unary(&mut self) -> Result<Ast, ParseError> {
        match self.peek_op() {
            Some("-") => {
                self.at += 1;
                Ok(Ast::Neg(Box::new(self.unary()?)))
            }
            Some("!") => {
                self.at += 1;
                Ok(Ast::Not(Box::new(self.unary()?)))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Ast, ParseError> {
        let Some((column, token)) = self.tokens.get(self.at).cloned() else {
            return Err(self.error_here("a value"));
        };
        let ast = match token {
            Token::Number(text) => {
                if let Ok(i) = text.parse::<i64>() {
                    Ast::Int(i)
                } else if let Ok(f) = text.parse::<f64>() {
                    Ast::Float(f)
                } else {
                    return Err(ParseError {
                        column,
                        message: format!("`{text}` is not a number"),
                    });
                }
            }
            Token::Str(text) => Ast::Str(text),
            Token::Ident(name) => match name.as_str() {
                "true" => Ast::Bool(true),
                "false" => Ast::Bool(false),
                "null" => Ast::Null,
                _ if matches!(self.tokens.get(self.at + 1), Some((_, Token::Open))) => {
                    return self.call(column, &name);
                }
                _ => {
                    if name.ends_with('.') || name.contains("..") {
                        return Err(ParseError {
                            column,
                            message: format!("`{name}` is not a field path: write `a.b`"),
                        });
                    }
                    Ast::Field(name)
                }
            },
            Token::Open => {
                self.at += 1;
                let inner = self.or()?;
                if !matches!(self.tokens.get(self.at), Some((_, Token::Close))) {
                    return Err(self.error_here("`)`"));
                }
                inner
            }
            _ => return Err(self.error_here("a value")),
        };
        self.at += 1;
        Ok(ast)
    }

    fn call(&mut self, column: usize, name: &str) -> Result<Ast, ParseError> {
        let Some((func, arity)) = Func::named(name) else {
            return Err(ParseError {
                column,
                message: format!(
                    "unknown function `{name}`: have exists, contains, starts_with, ends_with, len"
                ),
            });
        };
        self.at += 2;
        let mut args = Vec::new();
        if !matches!(self.tokens.get(self.at), Some((_, Token::Close))) {
            loop {
                args.push(self.or()?);
                match self.tokens.get(self.at) {
                    Some((_, Token::Comma)) => self.at += 1,
                    Some((_, Token::Close)) => break,
                    _ => return Err(self.error_here("`,` or `)`")),
                }
            }
        }
        self.at += 1;
        if args.len() != arity {
            return Err(ParseError {
                column,
                message: format!("`{name}` takes {arity} argument(s), got {}", args.len()),
            });
        }
        if func == Func::Exists && !matches!(args[0], Ast::Field(_)) {
            return Err(ParseError {
                column,
                message: "`exists` takes a field path, like exists(user.id)".into(),
            });
        }
        Ok(Ast::Call(func, args))
    }
}
