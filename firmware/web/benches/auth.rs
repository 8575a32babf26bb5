//! What a login costs the box: one argon2id hash at the default cost (the
//! part an attacker makes us pay per guess, bounded by the attempt limits),
//! next to the session check every other request pays.
//!
//! `cargo bench -p bunker-web --bench auth`

use std::time::{Duration, Instant};

use bunker_web::password::{self, PasswordCost};
use bunker_web::rate_limit::{Limiter, RateLimits};
use bunker_web::sessions::{SessionLimits, Sessions};
use criterion::{criterion_group, criterion_main, Criterion};

fn auth(c: &mut Criterion) {
    let mut g = c.benchmark_group("auth");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    let stored = password::hash("correct horse battery", PasswordCost::default()).expect("hash");
    g.bench_function("argon2id_hash_default_cost", |b| {
        b.iter(|| password::hash("correct horse battery", PasswordCost::default()).expect("hash"))
    });
    g.bench_function("argon2id_verify_default_cost", |b| {
        b.iter(|| password::verify("correct horse battery", &stored).expect("verify"))
    });
    g.finish();

    let mut g = c.benchmark_group("per_request");
    let mut sessions = Sessions::new(SessionLimits::default());
    let now = Instant::now();
    let ids: Vec<String> = (0..SessionLimits::default().max_sessions).map(|_| sessions.create(now)).collect();
    g.bench_function("session_check_full_table", |b| b.iter(|| sessions.touch(&ids[7], now)));
    let mut limiter = Limiter::new(RateLimits::default(), now);
    let ip = std::net::IpAddr::from([192, 168, 1, 20]);
    g.bench_function("rate_limit_attempt_and_refund", |b| {
        b.iter(|| {
            let ok = limiter.attempt(Some(ip), now).is_ok();
            limiter.refund(Some(ip), now);
            ok
        })
    });
    g.finish();
}

criterion_group!(benches, auth);
criterion_main!(benches);
