//! The waterfall chart of one pair as SVG text: the prior's bar, then each field's weight
//! stacked on the running total (green up, red down, grey for missing, outlined where the
//! level vetoes), then the total match weight, with the probability in the caption.

use plotters::coord::ranged1d::{IntoSegmentedCoord, SegmentValue};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::model::PairExplanation;
use crate::MatchingError;

const WIDTH: u32 = 900;
const HEIGHT: u32 = 480;

fn chart_error(e: impl std::fmt::Display) -> MatchingError {
    MatchingError::FellegiSunter {
        reason: format!("cannot draw the waterfall chart: {e}"),
    }
}

/// One bar: its label, where it starts and ends, its colour and whether it vetoes.
struct Bar {
    label: String,
    from: f64,
    to: f64,
    colour: RGBColor,
    veto: bool,
}

fn bars(explanation: &PairExplanation) -> Vec<Bar> {
    let mut out = vec![Bar {
        label: "prior".into(),
        from: 0.0,
        to: explanation.prior_weight,
        colour: RGBColor(90, 90, 160),
        veto: false,
    }];
    let mut running = explanation.prior_weight;
    for field in &explanation.fields {
        let colour = if field.m.is_none() {
            RGBColor(170, 170, 170)
        } else if field.weight >= 0.0 {
            RGBColor(60, 150, 80)
        } else {
            RGBColor(200, 60, 50)
        };
        out.push(Bar {
            label: format!("{}: {}", field.field, field.level),
            from: running,
            to: running + field.weight,
            colour,
            veto: field.veto,
        });
        running += field.weight;
    }
    out.push(Bar {
        label: "total".into(),
        from: 0.0,
        to: explanation.match_weight,
        colour: RGBColor(40, 40, 40),
        veto: false,
    });
    out
}

/// Draws `explanation` as an SVG waterfall chart titled `title`, and returns the SVG text.
/// Pure: no file, no font lookup (text is left to the SVG viewer).
///
/// # Errors
/// [`MatchingError::FellegiSunter`] if a weight is not finite or the chart cannot be drawn.
///
/// # Example
/// ```
/// use blindlink_matching::fellegi_sunter::*;
/// let comparisons = Comparisons::new(vec![
///     FieldComparison::for_token_kind("name", TokenKind::QGram),
///     FieldComparison::for_token_kind("dob", TokenKind::PositionalQGram),
/// ])?;
/// let model = FellegiSunterModel::fixed(&comparisons, 0.9, &[
///     (vec![0.9, 0.05, 0.03, 0.02], vec![0.01, 0.02, 0.07, 0.9]),
///     (vec![0.95, 0.04, 0.01], vec![0.001, 0.01, 0.989]),
/// ])?;
/// let svg = waterfall_svg(&model.explain(&[Level::at(0), Level::at(2)])?, "pair 7")?;
/// assert!(svg.starts_with("<svg") && svg.contains("dob: different"));
/// # Ok::<(), blindlink_matching::MatchingError>(())
/// ```
pub fn waterfall_svg(explanation: &PairExplanation, title: &str) -> Result<String, MatchingError> {
    let bars = bars(explanation);
    if bars
        .iter()
        .any(|b| !(b.from.is_finite() && b.to.is_finite()))
    {
        return Err(chart_error("a weight is not finite"));
    }
    let low = bars.iter().map(|b| b.from.min(b.to)).fold(0.0, f64::min);
    let high = bars.iter().map(|b| b.from.max(b.to)).fold(0.0, f64::max);
    let pad = ((high - low) * 0.08).max(0.5);
    let (low, high) = (low - pad, high + pad);
    let count = i32::try_from(bars.len()).map_err(chart_error)?;
    let caption = format!(
        "{title}: match weight {:+.2}, probability {:.4}",
        explanation.match_weight, explanation.probability
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((0..count - 1).into_segmented(), low..high)
            .map_err(chart_error)?;
        let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
        let label_of = |x: &SegmentValue<i32>| match x {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => usize::try_from(*i)
                .ok()
                .and_then(|i| labels.get(i))
                .cloned()
                .unwrap_or_default(),
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bars.len())
            .x_label_formatter(&label_of)
            .x_label_style(("sans-serif", 11))
            .y_desc("match weight (bits)")
            .draw()
            .map_err(chart_error)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(SegmentValue::Exact(0), 0.0), (SegmentValue::Last, 0.0)],
                BLACK.stroke_width(1),
            )))
            .map_err(chart_error)?;
        for (column, bar) in (0..count).zip(&bars) {
            let corners = || {
                [
                    (SegmentValue::Exact(column), bar.from.min(bar.to)),
                    (
                        if column + 1 == count {
                            SegmentValue::Last
                        } else {
                            SegmentValue::Exact(column + 1)
                        },
                        bar.from.max(bar.to),
                    ),
                ]
            };
            let top = bar.from.max(bar.to);
            let mut rect = Rectangle::new(corners(), bar.colour.filled());
            rect.set_margin(0, 0, 10, 10);
            chart
                .draw_series(std::iter::once(rect))
                .map_err(chart_error)?;
            if bar.veto {
                let mut outline = Rectangle::new(corners(), BLACK.stroke_width(3));
                outline.set_margin(0, 0, 10, 10);
                chart
                    .draw_series(std::iter::once(outline))
                    .map_err(chart_error)?;
            }
            let value = bar.to - if bar.label == "total" { 0.0 } else { bar.from };
            let text = if bar.veto {
                format!("{value:+.2} veto")
            } else {
                format!("{value:+.2}")
            };
            chart
                .draw_series(std::iter::once(Text::new(
                    text,
                    (SegmentValue::CenterOf(column), top + pad * 0.1),
                    TextStyle::from(("sans-serif", 12).into_font())
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                )))
                .map_err(chart_error)?;
        }
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}
