//! `src/generated.rs`: the client's request and answer types, generated from the server's own
//! OpenAPI document (`otesse_server::openapi::document()`, built in-process) with typify, and
//! printed with prettyplease. The test below regenerates the file and fails when it differs
//! from the committed one, so the client cannot drift from the server; `cargo xtask
//! client-types` runs it with `OTESSE_CLIENT_TYPES=write`, which writes the file instead.
//!
//! OpenAPI 3.1's component schemas are JSON Schema: they go to typify as the `definitions` of
//! one root schema (typify resolves `#/components/schemas/X` by its last segment). Two
//! adjustments, both narrow:
//! - Scopes in requests accept `customers:read` as an alias of `customers.read` (K5). typify
//!   cannot name both spellings apart (they make the same Rust variant), so the aliases are
//!   dropped: the client always sends the canonical dotted form.
//! - Strings marked `format: password` (keys, tokens, secrets, passwords, credentials) become
//!   the crate's `Secret`, which never prints itself.

use schemars::schema::{InstanceType, RootSchema, SchemaObject};
use serde_json::{Value, json};
use typify::{TypeSpace, TypeSpaceSettings};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/generated.rs");

const HEADER: &str = "\
//! Request and answer types, generated from the server's OpenAPI document with typify by
//! `cargo xtask client-types`. Do not edit: the `generated` test regenerates this file and
//! fails when it differs. The descriptions are the server's doc comments, whose links name the
//! server's items.
#![allow(missing_docs, clippy::all, clippy::pedantic, rustdoc::broken_intra_doc_links)]

";

/// The Rust source of `src/generated.rs`.
fn generate() -> String {
    let document = otesse_server::openapi::document();
    let mut schemas = document["components"]["schemas"].clone();
    drop_scope_aliases(&mut schemas);
    let root: RootSchema = serde_json::from_value(json!({ "definitions": schemas })).expect("component schemas");

    let mut settings = TypeSpaceSettings::default();
    settings.with_struct_builder(false).with_conversion(
        SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            format: Some("password".into()),
            ..Default::default()
        },
        "crate::Secret",
        std::iter::empty(),
    );
    let mut types = TypeSpace::new(&settings);
    types.add_root_schema(root).expect("typify converts the component schemas");
    let file: syn::File = syn::parse2(types.to_stream()).expect("typify's output parses");
    format!("{HEADER}{}", prettyplease::unparse(&file))
}

/// Drops the `customers:read` spellings from string enums that also hold `customers.read`.
fn drop_scope_aliases(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                let all = values.clone();
                values.retain(|value| match value.as_str() {
                    Some(name) if name.contains(':') => !all.contains(&Value::from(name.replacen(':', ".", 1))),
                    _ => true,
                });
            }
            map.values_mut().for_each(drop_scope_aliases);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_scope_aliases),
        _ => {}
    }
}

#[test]
fn generated_types_match_the_servers_openapi_document() {
    let generated = generate();
    if std::env::var("OTESSE_CLIENT_TYPES").as_deref() == Ok("write") {
        std::fs::write(FILE, &generated).expect("writing src/generated.rs");
        return;
    }
    let committed = std::fs::read_to_string(FILE).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()))
            + 1;
        panic!(
            "crates/client/src/generated.rs is not what the server's OpenAPI document generates (first \
             difference at line {line}: committed {:?}, generated {:?}); run `cargo xtask client-types` \
             and commit the result",
            committed.lines().nth(line - 1).unwrap_or("<end of file>"),
            generated.lines().nth(line - 1).unwrap_or("<end of file>"),
        );
    }
}

#[test]
fn scope_aliases_are_dropped_only_beside_their_dotted_spelling() {
    let mut schema =
        json!({"enum": ["customers.read", "customers:read", "odd:name"], "items": {"enum": ["a:b", "a.b"]}});
    drop_scope_aliases(&mut schema);
    assert_eq!(schema, json!({"enum": ["customers.read", "odd:name"], "items": {"enum": ["a.b"]}}));
}
