//! Room names as clients send them, validated before they touch the adapter.

use std::fmt;

/// Longest room name accepted by default, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 128;

/// A room name: a non-empty string no longer than the configured limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName(String);

/// Why a value is not a room name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoomNameError {
    /// No room argument was sent.
    #[error("a room name is required")]
    Missing,
    /// The room argument is not a string.
    #[error("the room name must be a string")]
    NotAString,
    /// The room argument is an empty string.
    #[error("the room name must not be empty")]
    Empty,
    /// The room argument is longer than allowed.
    #[error("the room name must be at most {0} characters")]
    TooLong(usize),
}

impl RoomName {
    /// Validates a room argument as a client sent it, allowing at most `max_chars` characters.
    pub fn parse(value: Option<&rmpv::Value>, max_chars: usize) -> Result<Self, RoomNameError> {
        let value = value.ok_or(RoomNameError::Missing)?;
        let name = value.as_str().ok_or(RoomNameError::NotAString)?;
        if name.is_empty() {
            return Err(RoomNameError::Empty);
        }
        // Counting stops early, so a huge name costs no more than the limit.
        if name.chars().nth(max_chars).is_some() {
            return Err(RoomNameError::TooLong(max_chars));
        }
        Ok(RoomName(name.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmpv::Value;

    #[test]
    fn accepts_ordinary_names() {
        let value = Value::from("lobby");
        assert_eq!(
            RoomName::parse(Some(&value), MAX_ROOM_NAME_CHARS).map(|r| r.0),
            Ok("lobby".into())
        );
        let longest = Value::from("é".repeat(MAX_ROOM_NAME_CHARS));
        assert!(RoomName::parse(Some(&longest), MAX_ROOM_NAME_CHARS).is_ok());
    }

    #[test]
    fn refuses_what_is_not_a_name() {
        assert_eq!(
            RoomName::parse(None, MAX_ROOM_NAME_CHARS),
            Err(RoomNameError::Missing)
        );
        assert_eq!(
            RoomName::parse(Some(&Value::from(7)), MAX_ROOM_NAME_CHARS),
            Err(RoomNameError::NotAString)
        );
        assert_eq!(
            RoomName::parse(Some(&Value::from("")), MAX_ROOM_NAME_CHARS),
            Err(RoomNameError::Empty)
        );
        let long = Value::from("x".repeat(MAX_ROOM_NAME_CHARS + 1));
        assert_eq!(
            RoomName::parse(Some(&long), MAX_ROOM_NAME_CHARS),
            Err(RoomNameError::TooLong(MAX_ROOM_NAME_CHARS))
        );
    }
}
