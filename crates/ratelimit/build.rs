//! `otesse_redis` is set when `OTESSE_TEST_REDIS_URL` is, so that the Redis tests run only
//! then (and are listed as ignored, with the reason, otherwise).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(otesse_redis)");
    println!("cargo::rerun-if-env-changed=OTESSE_TEST_REDIS_URL");
    if std::env::var_os("OTESSE_TEST_REDIS_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=otesse_redis");
    }
}
