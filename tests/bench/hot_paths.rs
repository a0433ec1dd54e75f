//! Criterion benchmarks of the work iorelay adds on top of socketioxide for each packet:
//! decoding event arguments, validating room names, building and encoding relayed messages.
//!
//!   cargo bench --bench hot_paths
//!   cargo bench --bench hot_paths -- --test   # each benchmark once, as a smoke test

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use iorelay::relay::chat::chat_message;
use iorelay::relay::payload::{ChatAck, EventArgs, RoomAck};
use iorelay::relay::room::{MAX_ROOM_NAME_CHARS, RoomName};
use socketioxide_core::parser::Parse;
use socketioxide_core::{Str, Value};
use socketioxide_parser_common::CommonParser;

/// A packet's data as socketioxide hands it to the `Data<EventArgs>` extractor.
fn packet_data(json: &str) -> Value {
    Value::Str(Str::from(json.to_owned()), None)
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode EventArgs");
    for (name, json) in [
        (
            "chat",
            r#"["chat",{"room":"bench","text":"1763740800000000000"}]"#,
        ),
        ("join", r#"["join","bench"]"#),
        (
            "echo 3 args",
            r#"["echo","hello",{"nested":[1,2,3],"flag":true},42.5]"#,
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || packet_data(json),
                |value| {
                    CommonParser
                        .decode_value::<EventArgs>(black_box(value), true)
                        .expect("valid packet")
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn room_names(c: &mut Criterion) {
    let mut group = c.benchmark_group("RoomName::parse");
    let cases = [
        ("short", rmpv::Value::from("bench")),
        ("128 chars, multibyte", rmpv::Value::from("é".repeat(128))),
        ("too long", rmpv::Value::from("x".repeat(129))),
        ("not a string", rmpv::Value::from(7)),
    ];
    for (name, value) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| RoomName::parse(black_box(Some(value)), MAX_ROOM_NAME_CHARS));
        });
    }
    group.finish();
}

fn handlers(c: &mut Criterion) {
    let mut group = c.benchmark_group("contract handlers");
    let mut chat = packet_data(r#"["chat",{"room":"bench","text":"1763740800000000000"}]"#);
    let chat_args: EventArgs = CommonParser
        .decode_value(&mut chat, true)
        .expect("valid chat");
    group.bench_function("chat_message", |b| {
        b.iter(|| {
            chat_message(
                black_box(&chat_args),
                black_box("Ab3dEf6hIj9lMn2p"),
                None,
                MAX_ROOM_NAME_CHARS,
            )
        });
    });
    let message = chat_message(&chat_args, "Ab3dEf6hIj9lMn2p", None, MAX_ROOM_NAME_CHARS)
        .expect("valid chat");
    group.bench_function("encode chat broadcast", |b| {
        b.iter(|| CommonParser.encode_value(black_box(&message), Some("chat")));
    });
    let mut echo = packet_data(r#"["echo","hello",{"nested":[1,2,3],"flag":true},42.5]"#);
    let echo_args: EventArgs = CommonParser
        .decode_value(&mut echo, true)
        .expect("valid echo");
    group.bench_function("encode echo ack", |b| {
        b.iter(|| CommonParser.encode_value(black_box(&echo_args), None));
    });
    group.bench_function("encode join ack", |b| {
        b.iter(|| {
            CommonParser.encode_value(
                black_box(&RoomAck {
                    room: "bench",
                    size: 1000,
                }),
                None,
            )
        });
    });
    group.bench_function("encode chat ack", |b| {
        b.iter(|| CommonParser.encode_value(black_box(&ChatAck { ok: true }), None));
    });
    group.finish();
}

criterion_group!(benches, decode, room_names, handlers);
criterion_main!(benches);
