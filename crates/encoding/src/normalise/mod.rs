//! Normalisation of identifier values before tokenising: each step is a named, tested function,
//! and a [`Pipeline`] applies a schema's list of steps in order.
//!
//! (Being written: the steps below are the contract the schema parser relies on.)

pub mod my_number;

use std::str::FromStr;

/// Why a value could not be normalised. Messages are lowercase and say what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormaliseError {
    /// The step name in a schema is not known.
    #[error("unknown normalisation step '{0}'")]
    UnknownStep(String),
    /// The value is not valid for the step (bad date, bad sex code, invalid My Number ...).
    #[error("{0}")]
    Invalid(String),
}

/// One normalisation step, named in schemas by its [`FromStr`] name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NormaliseStep {
    /// Unicode NFKC (`nfkc`).
    Nfkc,
    /// A 12-digit My Number with a valid check digit (`my-number`).
    MyNumber,
}

impl FromStr for NormaliseStep {
    type Err = NormaliseError;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "nfkc" => Ok(Self::Nfkc),
            "my-number" => Ok(Self::MyNumber),
            other => Err(NormaliseError::UnknownStep(other.to_owned())),
        }
    }
}

impl NormaliseStep {
    /// Applies this step to one value.
    ///
    /// # Errors
    /// [`NormaliseError::Invalid`] when the value is not valid for the step.
    pub fn apply(&self, input: &str) -> Result<String, NormaliseError> {
        match self {
            Self::Nfkc => Ok(input.to_owned()),
            Self::MyNumber => my_number::normalise(input),
        }
    }
}

/// An ordered list of steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pipeline {
    steps: Vec<NormaliseStep>,
}

impl Pipeline {
    /// Builds a pipeline from step names.
    ///
    /// # Errors
    /// [`NormaliseError::UnknownStep`] for a name that is not a step.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, NormaliseError> {
        let steps = names
            .iter()
            .map(|n| n.as_ref().parse())
            .collect::<Result<_, _>>()?;
        Ok(Self { steps })
    }

    /// Applies every step in order.
    ///
    /// # Errors
    /// The first step that rejects the value.
    pub fn apply(&self, input: &str) -> Result<String, NormaliseError> {
        let mut value = input.to_owned();
        for step in &self.steps {
            value = step.apply(&value)?;
        }
        Ok(value)
    }
}
