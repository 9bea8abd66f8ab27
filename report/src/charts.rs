//! The report's charts, drawn by plotters' SVG backend from plain data.
//!
//! [`render_chart_svg`] takes labelled values (`Vec<(String, f64)>`: a status, a date, an hour)
//! and a [`ChartSpec`], and returns a standalone SVG document, so the same charts can be inlined
//! in the HTML report or served by a live dashboard. Categories sit on a numeric x axis at
//! 0, 1, 2, ... with explicit tick positions: that thins long runs of date labels to what fits,
//! and lays out one category as well as many.

use crate::error::{Error, Result};
use crate::format;
use plotters::coord::ranged1d::{
    AsRangedCoord, KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter,
};
use plotters::prelude::*;
use std::fmt::Display;
use std::ops::Range;

/// Fill of every bar, line and point (seaborn's "deep" blue, as in the notebook's charts).
pub const PRIMARY: &str = "#4C72B0";
/// Fill of the 404 charts (seaborn's "deep" red).
pub const ALERT: &str = "#C44E52";

const WIDTH: u32 = 900;
const HEIGHT: u32 = 340;
/// Left margin plus y label area: what the plotting area loses of the width.
const Y_AREA: u32 = 76;
const RIGHT_MARGIN: u32 = 28;
/// Approximate width of one tick-label character at [`LABEL_FONT`] (plotters' SVG backend has
/// no font metrics, so label thinning needs an estimate).
const CHAR_PX: u32 = 8;
const LABEL_FONT: u32 = 15;
const FONT: &str = "sans-serif";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// One bar per category.
    Bar,
    /// Points joined by a line, for series over dates.
    Line,
}

/// How y values (axis ticks) are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// `950`, `1.2k`, `3.4M`.
    Count,
    /// `512 B`, `1.5 kB`, `3.4 MB`.
    Bytes,
    /// Ratios: `2.5`.
    Decimal,
}

impl ValueFormat {
    pub fn format(self, v: f64) -> String {
        match self {
            ValueFormat::Count | ValueFormat::Decimal => format::compact(v),
            ValueFormat::Bytes => format::bytes(v),
        }
    }
}

/// What one chart shows and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartSpec {
    /// Stable key: the SVG's `data-chart` attribute and, as `chart-<id>`, its `id`.
    pub id: String,
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub kind: ChartKind,
    /// A logarithmic y axis (values below 1 are drawn at 1).
    pub log_y: bool,
    pub y_format: ValueFormat,
    /// `#RRGGBB` fill of bars and points: [`PRIMARY`] or [`ALERT`].
    pub color: &'static str,
}

impl ChartSpec {
    /// A linear bar chart of counts in the primary color.
    pub fn bar(id: &str, title: &str, x_desc: &str, y_desc: &str) -> Self {
        ChartSpec {
            id: id.to_string(),
            title: title.to_string(),
            x_desc: x_desc.to_string(),
            y_desc: y_desc.to_string(),
            kind: ChartKind::Bar,
            log_y: false,
            y_format: ValueFormat::Count,
            color: PRIMARY,
        }
    }

    /// A line-and-points chart of counts in the primary color.
    pub fn line(id: &str, title: &str, x_desc: &str, y_desc: &str) -> Self {
        ChartSpec {
            kind: ChartKind::Line,
            ..ChartSpec::bar(id, title, x_desc, y_desc)
        }
    }

    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    pub fn y_format(mut self, f: ValueFormat) -> Self {
        self.y_format = f;
        self
    }

    pub fn color(mut self, color: &'static str) -> Self {
        self.color = color;
        self
    }
}

/// The categories that get a tick label: every one if they fit, else every k-th (always the
/// first), so dates never overlap. Public so that tests can predict the labels drawn.
pub fn label_indices(labels: &[String]) -> Vec<usize> {
    let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as u32;
    let slot = widest * CHAR_PX + 14;
    let fit = ((WIDTH - Y_AREA - RIGHT_MARGIN) / slot).max(1) as usize;
    let step = labels.len().div_ceil(fit).max(1);
    (0..labels.len()).step_by(step).collect()
}

/// The x axis: category `i` at `i`, from -0.5 to n - 0.5 so every bar has its full slot, with
/// tick labels at the thinned [`label_indices`] only and the category's label as tick text.
/// plotters' own numeric axes pick "nice" fractional ticks, which categories must not have.
struct Categories {
    labels: Vec<String>,
    ticks: Vec<f64>,
}

impl Categories {
    fn new(labels: Vec<String>) -> Self {
        let ticks = label_indices(&labels)
            .into_iter()
            .map(|i| i as f64)
            .collect();
        Categories { labels, ticks }
    }
}

impl Ranged for Categories {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let n = self.labels.len().max(1) as f64;
        let f = (v + 0.5) / n;
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // Only bold points: light ones would draw a grid line per category.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        -0.5..self.labels.len().max(1) as f64 - 0.5
    }
}

impl ValueFormatter<f64> for Categories {
    fn format(v: &f64) -> String {
        v.to_string()
    }

    fn format_ext(&self, v: &f64) -> String {
        let i = v.round();
        if i >= 0.0 {
            self.labels.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    }
}

fn rgb(hex: &str) -> RGBColor {
    let h = hex.trim_start_matches('#');
    let c = |i: usize| h.get(i..i + 2).and_then(|s| u8::from_str_radix(s, 16).ok());
    match (c(0), c(2), c(4)) {
        (Some(r), Some(g), Some(b)) => RGBColor(r, g, b),
        _ => RGBColor(0x4C, 0x72, 0xB0),
    }
}

/// Draws `data` as `spec` says and returns a standalone SVG document. Its root `<svg>` carries
/// `id="chart-<id>"`, `data-chart="<id>"`, `class="chart"`, `role="img"` and an `aria-label`;
/// bars are `<rect>` elements filled with `spec.color`, and the only other `<rect>` is the
/// white background.
pub fn render_chart_svg(spec: &ChartSpec, data: &[(String, f64)]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err(spec))?;
        let max = data
            .iter()
            .map(|d| d.1)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        if spec.log_y {
            // Headroom of a factor 2 keeps the tallest bar below the frame; at least one decade.
            let top = (max * 2.0).max(10.0);
            draw(&root, spec, data, (1f64..top).log_scale(), 1.0)?;
        } else {
            let top = if max > 0.0 { max * 1.08 } else { 1.0 };
            draw(&root, spec, data, 0f64..top, 0.0)?;
        }
        root.present().map_err(chart_err(spec))?;
    }
    Ok(tag_root(svg, spec))
}

fn chart_err<E: Display>(spec: &ChartSpec) -> impl Fn(E) -> Error + '_ {
    move |e| Error::Chart {
        chart: spec.id.clone(),
        message: e.to_string(),
    }
}

/// The chart itself, generic over the y axis so linear and log axes share one code path.
fn draw<DB, Y>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    spec: &ChartSpec,
    data: &[(String, f64)],
    y_range: Y,
    baseline: f64,
) -> Result<()>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let err = chart_err(spec);
    let labels: Vec<String> = data.iter().map(|d| d.0.clone()).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(&spec.title, (FONT, 24).into_font().style(FontStyle::Bold))
        .margin(12)
        .margin_right(RIGHT_MARGIN)
        .x_label_area_size(46)
        .y_label_area_size(Y_AREA - 12)
        .build_cartesian_2d(Categories::new(labels), y_range)
        .map_err(&err)?;

    let y_label = |y: &f64| spec.y_format.format(*y);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.12))
        .y_labels(8)
        .y_label_formatter(&y_label)
        .label_style((FONT, LABEL_FONT))
        .axis_desc_style((FONT, 16))
        .x_desc(&spec.x_desc)
        .y_desc(&spec.y_desc)
        .draw()
        .map_err(&err)?;

    let color = rgb(spec.color);
    let points = data
        .iter()
        .enumerate()
        .map(|(i, d)| (i as f64, if d.1.is_finite() { d.1 } else { 0.0 }));
    match spec.kind {
        ChartKind::Bar => {
            chart
                .draw_series(points.map(|(x, y)| {
                    Rectangle::new(
                        [(x - 0.38, baseline), (x + 0.38, y.max(baseline))],
                        color.filled(),
                    )
                }))
                .map_err(&err)?;
        }
        ChartKind::Line => {
            let pts: Vec<(f64, f64)> = points.map(|(x, y)| (x, y.max(baseline))).collect();
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(&err)?;
            chart
                .draw_series(PointSeries::of_element(
                    pts,
                    4,
                    color.filled(),
                    &|c, s, st| EmptyElement::at(c) + Circle::new((0, 0), s, st),
                ))
                .map_err(&err)?;
        }
    }
    if data.is_empty() {
        let (w, h) = chart.plotting_area().dim_in_pixel();
        let style = (FONT, 20).into_font().color(&BLACK.mix(0.5)).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Center,
            ),
        );
        chart
            .plotting_area()
            .strip_coord_spec()
            .draw(&Text::new(
                "no data",
                ((w / 2) as i32, (h / 2) as i32),
                style,
            ))
            .map_err(&err)?;
    }
    Ok(())
}

/// Marks the root element so pages and tests can find the chart, and gives it a title for
/// screen readers and hover.
fn tag_root(svg: String, spec: &ChartSpec) -> String {
    let id = format::html(&spec.id);
    let title = format::html(&spec.title);
    let Some(start) = svg.find("<svg ") else {
        return svg;
    };
    let Some(end) = svg[start..].find('>').map(|e| start + e + 1) else {
        return svg;
    };
    format!(
        "{}<svg id=\"chart-{id}\" data-chart=\"{id}\" class=\"chart\" role=\"img\" aria-label=\"{title}\" {}\n<title>{title}</title>{}",
        &svg[..start],
        &svg[start + 5..end],
        &svg[end..]
    )
}

/// The SVG for inlining in HTML: without the XML namespace declaration, which HTML parsing
/// implies for `<svg>` (and whose URI would be the page's only `http://`).
pub fn inline_svg(svg: &str) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<(String, f64)> {
        (0..n)
            .map(|i| (format!("2024-01-{:02}", i + 1), (i * 1000) as f64))
            .collect()
    }

    fn count(svg: &str, needle: &str) -> usize {
        svg.matches(needle).count()
    }

    #[test]
    fn bars_are_rects_in_the_chart_color() {
        let svg = render_chart_svg(&ChartSpec::bar("t", "T", "x", "y"), &data(5)).unwrap();
        assert!(
            svg.starts_with("<svg id=\"chart-t\" data-chart=\"t\""),
            "{svg}"
        );
        assert_eq!(count(&svg, &format!("fill=\"{PRIMARY}\"")), 5);
        assert_eq!(count(&svg, "<rect"), 6, "bars and the background");
        assert!(svg.contains(">\n4k\n<"), "compact y ticks: {svg}");
    }

    #[test]
    fn one_and_zero_categories_draw() {
        let one = render_chart_svg(&ChartSpec::bar("t", "T", "x", "y").log_y(), &data(1)).unwrap();
        assert_eq!(count(&one, &format!("fill=\"{PRIMARY}\"")), 1);
        let none = render_chart_svg(&ChartSpec::line("t", "T", "x", "y"), &[]).unwrap();
        assert!(none.contains("no data"));
        assert!(!none.contains("NaN"));
    }

    #[test]
    fn long_date_runs_are_thinned() {
        let labels: Vec<String> = data(62).into_iter().map(|d| d.0).collect();
        let idx = label_indices(&labels);
        assert!(idx.len() < 12 && idx.len() > 4, "{idx:?}");
        assert_eq!(idx[0], 0);
        let svg = render_chart_svg(&ChartSpec::line("t", "T", "x", "y"), &data(62)).unwrap();
        let dates = svg.lines().filter(|l| l.starts_with("2024-01-")).count();
        assert_eq!(dates, idx.len());
    }

    #[test]
    fn inline_drops_the_namespace_uri() {
        let svg = render_chart_svg(&ChartSpec::bar("t", "T", "x", "y"), &data(2)).unwrap();
        assert!(svg.contains("http://"));
        assert!(!inline_svg(&svg).contains("http://"));
    }
}
