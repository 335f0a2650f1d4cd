//! JSON → MessagePack, the per-record parse of the Kafka, NATS and HTTP sources: Weir's
//! one-pass transcoder against serde_json parsing the same text into its value tree (the
//! baseline: parsing alone, before any MessagePack is written) and against the tree then
//! encoded with rmpv, in the same run. And back, MessagePack → JSON as the sinks write it:
//! the one-pass renderer against the value tree then serde_json.
//!
//! `cargo bench -p weir --bench json`

// criterion_group! makes public functions that cannot carry doc comments.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const RECORDS: usize = 4_096;

/// Records shaped like the Kafka benchmark's, and larger ones with nesting and escapes.
fn records() -> [(&'static str, Vec<Vec<u8>>); 2] {
    let small = (0..RECORDS)
        .map(|seq| {
            format!(
                r#"{{"seq":{seq},"key":"k{}","amount":{}}}"#,
                seq % 64,
                (seq * 7919) % 100
            )
            .into_bytes()
        })
        .collect();
    let nested = (0..RECORDS)
        .map(|seq| {
            format!(
                r#"{{"id":"order-{seq}","user":{{"name":"Zoë \"Z\" Åberg","country":"NL","tags":["a","bb","ccc"]}},"lines":[{{"sku":"S{seq}","qty":{},"price":{}.25}},{{"sku":"T","qty":1,"price":-3.5}}],"paid":true,"note":null}}"#,
                seq % 7,
                seq % 100
            )
            .into_bytes()
        })
        .collect();
    [("small", small), ("nested", nested)]
}

fn json(c: &mut Criterion) {
    for (shape, records) in records() {
        let mut group = c.benchmark_group(format!("json_{shape}"));
        group.throughput(Throughput::Elements(RECORDS as u64));
        group.bench_function("weir_transcode", |b| {
            let mut out = Vec::with_capacity(512);
            b.iter(|| {
                for text in &records {
                    out.clear();
                    weir::format::json_to_msgpack_into(text, &mut out).expect("JSON");
                    black_box(&out);
                }
            });
        });
        group.bench_function("serde_json_tree_only", |b| {
            b.iter(|| {
                for text in &records {
                    let value: serde_json::Value = serde_json::from_slice(text).expect("JSON");
                    black_box(value);
                }
            });
        });
        group.bench_function("serde_json_tree_then_msgpack", |b| {
            b.iter(|| {
                for text in &records {
                    let value: serde_json::Value = serde_json::from_slice(text).expect("JSON");
                    black_box(weir::format::json_value_to_msgpack(&value));
                }
            });
        });
        group.finish();

        let payloads: Vec<Vec<u8>> = records
            .iter()
            .map(|text| weir::format::json_to_msgpack(text).expect("JSON"))
            .collect();
        let mut group = c.benchmark_group(format!("json_out_{shape}"));
        group.throughput(Throughput::Elements(RECORDS as u64));
        group.bench_function("weir_render", |b| {
            let mut out = Vec::with_capacity(512);
            b.iter(|| {
                for payload in &payloads {
                    out.clear();
                    weir::format::msgpack_to_json_into(payload, &mut out).expect("MessagePack");
                    black_box(&out);
                }
            });
        });
        group.bench_function("value_tree_then_serde_json", |b| {
            let mut out = Vec::with_capacity(512);
            b.iter(|| {
                for payload in &payloads {
                    out.clear();
                    let value = weir::format::msgpack_to_json(payload).expect("MessagePack");
                    serde_json::to_writer(&mut out, &value).expect("JSON");
                    black_box(&out);
                }
            });
        });
        group.finish();
    }
}

criterion_group!(benches, json);
criterion_main!(benches);
