//! A command's flags, as every command takes them: `--flag value` or `--flag=value`, and
//! switches (`--quick`) that take no value.

use crate::error::Error;

/// The arguments after the command's name, read one at a time; `value` takes a flag's value.
pub struct Flags<'a> {
    args: std::slice::Iter<'a, &'a str>,
}

/// One argument: the flag, and its value when written `--flag=value`.
pub struct Flag<'a> {
    /// The argument as given.
    pub arg: &'a str,
    /// The argument up to its first `=`.
    pub name: &'a str,
    inline: Option<&'a str>,
}

impl<'a> Flags<'a> {
    pub fn new(args: &'a [&'a str]) -> Self {
        Self { args: args.iter() }
    }

    /// `flag`'s value: what follows its `=`, else the next argument.
    pub fn value(&mut self, flag: &Flag<'a>) -> Result<&'a str, Error> {
        flag.inline
            .or_else(|| self.args.next().copied())
            .ok_or_else(|| Error::new(format!("{} needs a value; see `cargo xtask help`", flag.name)))
    }
}

impl<'a> Iterator for Flags<'a> {
    type Item = Flag<'a>;

    fn next(&mut self) -> Option<Flag<'a>> {
        let arg = *self.args.next()?;
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (arg, None),
        };
        Some(Flag { arg, name, inline })
    }
}

impl Flag<'_> {
    /// Written without `=value`: how a switch is given.
    pub fn is_switch(&self) -> bool {
        self.inline.is_none()
    }

    /// The error for an argument the command does not take.
    pub fn unknown(&self) -> Error {
        Error::new(format!("unknown option `{}`; see `cargo xtask help`", self.arg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_values_after_a_space_or_an_equals_sign_and_switches() {
        let args = ["--keys", "5", "--database=postgres", "--quick", "--url=postgres://h/db?a=b"];
        let mut flags = Flags::new(&args);
        let mut seen = Vec::new();
        while let Some(flag) = flags.next() {
            let value = if flag.name == "--quick" { None } else { Some(flags.value(&flag).unwrap()) };
            seen.push((flag.name, flag.is_switch(), value));
        }
        assert_eq!(
            seen,
            [
                ("--keys", true, Some("5")),
                ("--database", false, Some("postgres")),
                ("--quick", true, None),
                ("--url", false, Some("postgres://h/db?a=b")),
            ]
        );
    }

    #[test]
    fn a_missing_value_and_an_unknown_flag_are_errors() {
        let args = ["--keys"];
        let mut flags = Flags::new(&args);
        let flag = flags.next().unwrap();
        assert!(flags.value(&flag).unwrap_err().to_string().contains("--keys needs a value"));
        assert!(flag.unknown().to_string().contains("unknown option `--keys`"));
    }
}
