//! Declares the curve25519-dalek backend cfg, which `curve_backend` reads when a build sets it
//! (`RUSTFLAGS='--cfg curve25519_dalek_backend="avx512"'` reaches every crate).

fn main() {
    println!(
        "cargo::rustc-check-cfg=cfg(curve25519_dalek_backend, values(\"serial\", \"fiat\", \"simd\", \"avx512\"))"
    );
}
