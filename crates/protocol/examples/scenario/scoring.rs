//! How `validate` and `fuzzy` score the synthetic scenario's five compared fields; also
//! included by the fuzz crate (`fuzz/src/lib.rs`), whose recorded seed transcripts carry these
//! names and weights in their handshake parameters.

use blindlink_protocol::FieldScoring;

/// Kana name, kanji name, date of birth (veto below 0.9), sex (veto below 0.5), address.
pub(crate) fn field_scoring() -> Vec<FieldScoring> {
    vec![
        FieldScoring::weighted("name_kana", 2.0),
        FieldScoring::weighted("name_kanji", 1.0),
        FieldScoring {
            veto_below: Some(0.9),
            ..FieldScoring::weighted("date_of_birth", 2.0)
        },
        FieldScoring {
            veto_below: Some(0.5),
            ..FieldScoring::weighted("sex", 1.0)
        },
        FieldScoring::weighted("address", 1.0),
    ]
}
