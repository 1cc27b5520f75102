//! One module per subcommand: each defines its clap arguments and a `run` function.

pub mod bench;
pub mod certs;
pub mod describe;
pub mod encode;
pub mod evaluate;
pub mod keygen;
pub mod matching;
pub mod schema;
pub mod synth;
