//! Room names as clients send them, validated before they touch the adapter.

use std::fmt;

/// Longest room name accepted, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 128;

/// A room name that is a non-empty string of at most [`MAX_ROOM_NAME_CHARS`] characters.
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
    #[error("the room name must be at most {MAX_ROOM_NAME_CHARS} characters")]
    TooLong,
}

impl RoomName {
    /// Validates a room argument as a client sent it.
    pub fn parse(value: Option<&rmpv::Value>) -> Result<Self, RoomNameError> {
        let value = value.ok_or(RoomNameError::Missing)?;
        let name = value.as_str().ok_or(RoomNameError::NotAString)?;
        if name.is_empty() {
            return Err(RoomNameError::Empty);
        }
        if name.chars().count() > MAX_ROOM_NAME_CHARS {
            return Err(RoomNameError::TooLong);
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
            RoomName::parse(Some(&value)).map(|r| r.0),
            Ok("lobby".into())
        );
        let longest = Value::from("é".repeat(MAX_ROOM_NAME_CHARS));
        assert!(RoomName::parse(Some(&longest)).is_ok());
    }

    #[test]
    fn refuses_what_is_not_a_name() {
        assert_eq!(RoomName::parse(None), Err(RoomNameError::Missing));
        assert_eq!(
            RoomName::parse(Some(&Value::from(7))),
            Err(RoomNameError::NotAString)
        );
        assert_eq!(
            RoomName::parse(Some(&Value::from(""))),
            Err(RoomNameError::Empty)
        );
        let long = Value::from("x".repeat(MAX_ROOM_NAME_CHARS + 1));
        assert_eq!(RoomName::parse(Some(&long)), Err(RoomNameError::TooLong));
    }
}
