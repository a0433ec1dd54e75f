//! The fuzz target's seed corpus (`tests/fuzz/seeds/packet/`) as regression tests.
//!
//! Each seed is a Socket.IO text packet, then binary attachments each introduced by the byte
//! 0x1E, read the way the fuzz target reads it. Every seed must come back from
//! `handle_client_packet` without a panic; a few also pin down what the server answers.

use std::path::{Path, PathBuf};

use iorelay::socketio::inspect::{Answer, Ignored, Outcome, PacketError, handle_client_packet};
use rmpv::Value;
use socketioxide_core::parser::ParseError;

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/seeds/packet")
}

/// Runs one seed the way `tests/fuzz/fuzz_targets/packet.rs` does.
fn run(seed: &[u8]) -> Result<Outcome, PacketError> {
    let mut parts = seed.split(|&b| b == 0x1E);
    let packet = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let attachments: Vec<&[u8]> = parts.collect();
    handle_client_packet(&packet, &attachments)
}

fn run_named(name: &str) -> Result<Outcome, PacketError> {
    let path = seeds_dir().join(name);
    let seed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    run(&seed)
}

fn answer_of(name: &str) -> (Option<i64>, Answer) {
    match run_named(name) {
        Ok(Outcome::Handled { ack_id, answer, .. }) => (ack_id, answer),
        other => panic!("{name}: expected a handled event, got {other:?}"),
    }
}

#[test]
fn every_seed_returns_without_panicking() {
    let mut entries: Vec<_> = std::fs::read_dir(seeds_dir())
        .expect("the seed corpus exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .collect();
    entries.sort();
    assert!(entries.len() >= 50, "only {} seeds found", entries.len());
    let mut panicked = Vec::new();
    for path in &entries {
        let seed = std::fs::read(path).expect("readable seed");
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        match std::panic::catch_unwind(|| run(&seed)) {
            Ok(outcome) => println!("{name}: {outcome:?}"),
            Err(_) => panicked.push(name.into_owned()),
        }
    }
    assert!(panicked.is_empty(), "seeds that panicked: {panicked:?}");
}

#[test]
fn valid_requests_are_answered() {
    let (ack_id, answer) = answer_of("chat-to-room");
    assert_eq!(ack_id, None);
    assert!(
        matches!(&answer, Answer::Chat(m) if m.room.as_deref() == Some("r") && m.text == "hi"),
        "{answer:?}"
    );
    let (ack_id, answer) = answer_of("join-chat-namespace-with-ack");
    assert_eq!(ack_id, Some(3));
    assert!(
        matches!(&answer, Answer::Room(room) if room.as_str() == "lobby"),
        "{answer:?}"
    );
    assert_eq!(
        answer_of("message-binary").1,
        Answer::Message(iorelay::relay::payload::EventArgs(vec![Value::Binary(
            vec![1, 2, 3]
        )]))
    );
}

#[test]
fn invalid_requests_are_refused_with_the_documented_errors() {
    for (seed, error) in [
        ("join-number", "the room name must be a string"),
        ("join-empty", "the room name must not be empty"),
        ("join-missing", "a room name is required"),
        (
            "join-too-long",
            "the room name must be at most 128 characters",
        ),
        ("chat-not-object", "chat expects an object { room, text }"),
        ("chat-text-number", "chat text must be a string"),
    ] {
        assert_eq!(
            answer_of(seed),
            (Some(1), Answer::Refused(error.into())),
            "{seed}"
        );
    }
}

/// Asserts that every seed is refused with an error that `expected` accepts.
fn assert_refused(seeds: &[&str], expected: fn(&PacketError) -> bool) {
    for seed in seeds {
        let result = run_named(seed);
        assert!(
            matches!(&result, Err(error) if expected(error)),
            "{seed}: {result:?}"
        );
    }
}

#[test]
fn malformed_packets_close_the_connection() {
    assert_refused(
        &[
            "empty",
            "type-7",
            "connect-error-from-client",
            "ack-without-id",
            "binary-without-count",
            "invalid-utf8-only",
        ],
        |error| matches!(error, PacketError::Malformed(_)),
    );
    assert!(matches!(
        run_named("attachments-over-limit"),
        Err(PacketError::Malformed(ParseError::TooManyAttachments {
            got: 10_001,
            max: 10_000
        }))
    ));
    assert!(matches!(
        run_named("extra-attachment"),
        Err(PacketError::Malformed(ParseError::UnexpectedBinaryPacket))
    ));
    assert_refused(
        &[
            "event-name-number",
            "event-name-null",
            "event-name-missing",
            "truncated-event",
        ],
        |error| matches!(error, PacketError::InvalidEventName),
    );
}

#[test]
fn malformed_arguments_disconnect_the_sender() {
    assert_refused(
        &[
            "json-then-garbage",
            "lone-surrogate",
            "deep-array-5000",
            "deep-object-5000",
            "deep-room-in-chat",
            "placeholder-pointing-nowhere",
            "placeholder-no-attachments",
            "placeholder-num-negative",
            "placeholder-num-string",
            "placeholder-in-text-event",
            "two-placeholders-one-attachment",
        ],
        |error| matches!(error, PacketError::MalformedArguments(_)),
    );
}

#[test]
fn harmless_packets_are_ignored() {
    for (seed, expected) in [
        ("event-unknown-namespace", Ignored::UnknownNamespace),
        ("event-name-unknown", Ignored::NoHandler),
        ("echo-on-chat-namespace", Ignored::NoHandler),
        ("ack-unknown-id", Ignored::UnexpectedAck),
    ] {
        assert_eq!(
            run_named(seed).ok(),
            Some(Outcome::Ignored(expected)),
            "{seed}"
        );
    }
    assert_eq!(
        run_named("connect-unknown-namespace").ok(),
        Some(Outcome::InvalidNamespace {
            namespace: "/nowhere".into()
        })
    );
    assert_eq!(
        run_named("attachments-never-sent").ok(),
        Some(Outcome::AwaitingAttachments {
            announced: 9999,
            received: 0
        })
    );
}
