//! The per-role state machine behind [`super::ModeDriver`].

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};

use super::{LinkOutcome, ModeConfig, PartyData};
use crate::{DisclosureLedger, DriverStep, Message, Mode, ProtocolError, Role};

pub(crate) struct Machine {
    role: Role,
    config: ModeConfig,
    #[allow(dead_code)]
    data: PartyData,
    #[allow(dead_code)]
    rng: ChaCha20Rng,
    outcome: Option<LinkOutcome>,
}

impl Machine {
    pub(crate) fn new<R: CryptoRng + ?Sized>(
        role: Role,
        config: ModeConfig,
        data: PartyData,
        rng: &mut R,
    ) -> Result<Self, ProtocolError> {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Ok(Self {
            role,
            config,
            data,
            rng: ChaCha20Rng::from_seed(seed),
            outcome: None,
        })
    }

    pub(crate) fn mode(&self) -> Mode {
        self.config.mode
    }

    pub(crate) fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn outcome(&self) -> Option<LinkOutcome> {
        self.outcome.clone()
    }

    pub(crate) fn start(
        &mut self,
        _ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        Err(ProtocolError::Invalid {
            what: "mode",
            reason: "modes are not implemented yet (api skeleton)".into(),
        })
    }

    pub(crate) fn handle(
        &mut self,
        _message: Message,
        _ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        Err(ProtocolError::Invalid {
            what: "mode",
            reason: "modes are not implemented yet (api skeleton)".into(),
        })
    }
}
