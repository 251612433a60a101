//! The report page: one HTML5 document with inline CSS and inline SVG, and no scripts, fonts,
//! stylesheets or images from anywhere else, so it opens offline and from an attachment.

use std::fmt::Write as _;

use super::{Chart, Report};

/// `s` escaped for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font-family:sans-serif;margin:24px;color:#222;background:#fff}\
h1{font-size:24px;margin:0 0 4px}p.sub{color:#666;margin:0 0 16px}\
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));grid-auto-flow:row dense;gap:16px}\
figure{margin:0;border:1px solid #ddd;padding:8px}figure.wide{grid-column:1/-1}\
figcaption{font-weight:bold;margin-bottom:4px}figure svg{width:100%;height:auto;display:block}\
p.note{color:#777;margin:4px 0;font-size:14px}\
table{border-collapse:collapse;margin-top:16px;font-size:13px}\
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f3f3f3}";

/// The SVG for inlining: without its XML namespace declaration, which HTML5 does not need and
/// which is the only URL the page would otherwise contain.
fn inline_svg(svg: &str) -> String {
    svg.replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1)
}

pub(super) fn page(r: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body>\n<h1>{}</h1>\n",
        escape(&r.options.title),
        escape(&r.options.title)
    );
    if let Some(sub) = &r.options.subtitle {
        let _ = writeln!(s, "<p class=\"sub\">{}</p>", escape(sub));
    }
    let mut notes = String::new();
    s.push_str("<div class=\"grid\">\n");
    for (chart, svg) in &r.charts {
        match svg {
            Ok(fig) => {
                let wide = if fig.is_wide() { " wide" } else { "" };
                let _ = writeln!(
                    s,
                    "<figure class=\"chart{wide}\" id=\"chart-{}\"><figcaption>{}</figcaption>{}</figure>",
                    chart.name(),
                    escape(chart.title()),
                    inline_svg(&fig.svg)
                );
            }
            Err(e) => {
                let _ =
                    writeln!(notes, "<p class=\"note\" id=\"note-{}\">{}</p>", chart.name(), escape(&note(*chart, e)));
            }
        }
    }
    s.push_str("</div>\n");
    s.push_str(&notes);
    runs_table(&mut s, r);
    s.push_str("</body></html>\n");
    s
}

fn note(chart: Chart, e: &super::ReportError) -> String {
    match e {
        super::ReportError::NoData { why, .. } => format!("{}: left out, {why}.", chart.title()),
        e => format!("{}: left out, {e}.", chart.title()),
    }
}

fn runs_table(s: &mut String, r: &Report) {
    let _ = writeln!(s, "<h2>Runs</h2>");
    if r.runs.is_empty() {
        s.push_str("<p class=\"note\">No runs match.</p>\n");
        return;
    }
    s.push_str(
        "<table id=\"runs\"><thead><tr><th>run</th><th>commit</th><th>machine</th><th>kind</th>\
         <th>started_at</th><th>records</th></tr></thead><tbody>\n",
    );
    for run in &r.runs {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            run.run,
            escape(&super::bench::short_commit(&run.commit)),
            escape(&run.machine),
            escape(&run.kind),
            escape(&run.started_at),
            run.records
        );
    }
    s.push_str("</tbody></table>\n");
}
