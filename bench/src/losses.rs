//! What a scenario lost: messages never delivered, acknowledgements never answered or answered
//! with an error (`{ "error": ... }`, such as the rate limit's), and connections that could not
//! be opened or broke.
//!
//! A scenario that lost anything still prints its measurement, then says what it lost in red
//! and exits with [`EXIT_CODE`], so that a script can tell "ran, but lost something" from
//! "could not run" (exit code 1). Its numbers describe a server that did not do all the work.

use std::io::IsTerminal;

use serde_json::Value;

/// Exit code of a scenario that ran to the end but lost something.
pub const EXIT_CODE: u8 = 3;

/// The losses of one run, each a sentence.
#[derive(Debug, Default)]
pub struct Losses(Vec<String>);

impl Losses {
    /// Records `describe(count)` when `count` is not zero.
    pub fn count(&mut self, count: u64, describe: impl FnOnce(u64) -> String) {
        if count > 0 {
            self.0.push(describe(count));
        }
    }

    /// Records `text` when `lost` holds.
    pub fn note(&mut self, lost: bool, text: &str) {
        if lost {
            self.0.push(text.to_owned());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The losses as the JSON array of a result's `losses` field.
    pub fn to_json(&self) -> Value {
        Value::from(self.0.clone())
    }

    /// Prints the losses on stderr, after the scenario's table.
    pub fn print(&self) {
        let color = Color::for_stderr();
        for loss in &self.0 {
            eprintln!("  {}", color.red(&format!("LOST: {loss}")));
        }
    }
}

/// The first `"error"` string of an acknowledgement, such as
/// `43[{"error":"rate limited: more than 100 events per second"}]`; `None` when it has none.
pub fn ack_error(ack: &[u8]) -> Option<String> {
    let start = crate::client::find(ack, b"\"error\":\"")? + 9;
    let rest = &ack[start..];
    let mut end = 0;
    while end < rest.len() && rest[end] != b'"' {
        // Skips the escaped character; the message is shown, not decoded.
        end += if rest[end] == b'\\' { 2 } else { 1 };
    }
    Some(String::from_utf8_lossy(&rest[..end.min(rest.len())]).into_owned())
}

/// Red text on a terminal unless `NO_COLOR` is set (<https://no-color.org>); plain text in
/// files and pipes.
#[derive(Clone, Copy)]
pub struct Color(bool);

impl Color {
    pub fn for_stdout() -> Self {
        Color(std::io::stdout().is_terminal() && !no_color())
    }

    pub fn for_stderr() -> Self {
        Color(std::io::stderr().is_terminal() && !no_color())
    }

    pub const fn plain() -> Self {
        Color(false)
    }

    pub fn red(self, text: &str) -> String {
        if self.0 {
            format!("\x1b[31m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_error_of_an_acknowledgement() {
        assert_eq!(
            ack_error(br#"4312[{"error":"rate limited: more than 100 events per second"}]"#)
                .as_deref(),
            Some("rate limited: more than 100 events per second")
        );
        assert_eq!(
            ack_error(br#"437[{"error":"say \"hi\""}]"#).as_deref(),
            Some(r#"say \"hi\""#)
        );
        assert_eq!(ack_error(br#"437[{"ok":true,"room":"bench"}]"#), None);
    }

    #[test]
    fn records_only_what_was_lost() {
        let mut losses = Losses::default();
        losses.count(0, |n| format!("{n} undelivered"));
        losses.note(false, "the publisher lost its connection");
        assert!(losses.is_empty());
        losses.count(64, |n| format!("{n} chats never acknowledged"));
        assert_eq!(
            losses.to_json(),
            serde_json::json!(["64 chats never acknowledged"])
        );
    }
}
