//! Turns on the PostgreSQL-only server tests (several processes on one database) when
//! `OTESSE_TEST_POSTGRES_URL` is set at build time, and the Redis ones when
//! `OTESSE_TEST_REDIS_URL` is; without them they are compiled but ignored, with a reason that
//! says so.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(otesse_postgres)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=OTESSE_TEST_POSTGRES_URL");
    if std::env::var_os("OTESSE_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=otesse_postgres");
    }
    // The same for the tests that need Redis (`OTESSE_TEST_REDIS_URL`).
    println!("cargo::rustc-check-cfg=cfg(otesse_redis)");
    println!("cargo::rerun-if-env-changed=OTESSE_TEST_REDIS_URL");
    if std::env::var_os("OTESSE_TEST_REDIS_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=otesse_redis");
    }
}
