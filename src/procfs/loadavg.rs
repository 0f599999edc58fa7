//! `/proc/loadavg`: `0.52 0.58 0.59 1/467 12345`.

use super::{ParseError, fields, parse_f64};

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

pub fn parse_loadavg(buf: &[u8]) -> Result<LoadAvg, ParseError> {
    let mut it = fields(buf);
    let mut next = || {
        it.next()
            .and_then(parse_f64)
            .ok_or(ParseError("expected three load averages"))
    };
    Ok(LoadAvg {
        one: next()?,
        five: next()?,
        fifteen: next()?,
    })
}
