//! Prints the curve25519-dalek backend this build runs on this CPU (`blindlink_psi::curve_backend`).
//! With an emulator this shows the run-time fallback of an IFMA-enabled build:
//!
//!     RUSTFLAGS='--cfg curve25519_dalek_backend="avx512"' cargo build --release -p blindlink-psi --example curve_backend
//!     target/release/examples/curve_backend                          # avx512ifma on an IFMA CPU
//!     qemu-x86_64 -cpu Haswell target/release/examples/curve_backend # avx2
//!     qemu-x86_64 -cpu Nehalem target/release/examples/curve_backend # serial

fn main() {
    println!("{}", blindlink_psi::curve_backend());
}
