//! Turns on the PostgreSQL variants of the storage tests when `OTESSE_TEST_POSTGRES_URL` is set
//! at build time; without it they are compiled but ignored, with a reason that says so.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(otesse_postgres)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=OTESSE_TEST_POSTGRES_URL");
    if std::env::var_os("OTESSE_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=otesse_postgres");
    }
}
