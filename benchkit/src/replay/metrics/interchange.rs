//! Histograms in HdrHistogram's interchange encoding: the V2 format compressed with DEFLATE
//! (cookie `0x1c849304`), as base64 text — the payload of an HdrHistogram log line, which the
//! Java, C, Go, Python and Rust implementations all read. A shard's histograms can therefore be
//! inspected or merged with any HdrHistogram tool, not only benchkit.

use super::MetricsError;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// `h` as base64 of its V2 + DEFLATE serialization.
///
/// # Errors
/// [`MetricsError::Histogram`] when the serializer fails (it does not for histograms built by
/// the [`Aggregator`](super::Aggregator)).
pub fn encode(h: &Histogram<u64>) -> Result<String, MetricsError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| MetricsError::Histogram(format!("V2 deflate serialization: {e:?}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The histogram that `text` encodes (V2, compressed or not, as base64; surrounding
/// whitespace ignored). `what` names it in errors.
///
/// # Errors
/// [`MetricsError::Corrupt`] for text that is not base64 or bytes that are not a histogram.
pub fn decode(text: &str, what: &str) -> Result<Histogram<u64>, MetricsError> {
    let corrupt = |reason: String| MetricsError::Corrupt { what: what.to_string(), reason };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| corrupt(format!("not base64: {e}")))?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(|e| corrupt(format!("not an HdrHistogram: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, super::super::MAX_TRACKED_NS, 3).unwrap();
        for v in [1u64, 7, 999, 1_000_001, 123_456_789, 3_600_000_000_000] {
            h.record_n(v, v % 5 + 1).unwrap();
        }
        h
    }

    #[test]
    fn round_trip_gives_the_same_histogram() {
        let h = sample();
        let text = encode(&h).unwrap();
        // The V2 + DEFLATE cookie, base64: 0x1c849304 → "HIST".
        assert!(text.starts_with("HISTFAA"), "{text}");
        let back = decode(&format!("  {text}\n"), "t").unwrap();
        assert_eq!(back, h);
        assert_eq!((back.low(), back.high(), back.sigfig(), back.len()), (h.low(), h.high(), 3, h.len()));
        let empty = Histogram::<u64>::new_with_bounds(1, 1000, 3).unwrap();
        assert_eq!(decode(&encode(&empty).unwrap(), "e").unwrap(), empty);
    }

    #[test]
    fn reads_a_log_line_written_by_another_implementation() {
        // The payload of a tagged interval-log line from HdrHistogram's shared test data
        // (`tagged-Log.logV2.hlog`, written by the Java implementation; its max column: 2.769).
        let java =
            "HISTFAAAAEV42pNpmSzMwMCgyAABTBDKT4GBgdnNYMcCBvsPEBEJISEuATEZMQ4uASkhIR4nrxg9v2lMaxhvMekILGZkKmcCAEf2CsI=";
        let h = decode(java, "java").unwrap();
        assert!(!h.is_empty());
        // The max column is the max value in units of 1e6 (µs → s).
        assert!((h.max() as f64 / 1e6 - 2.769).abs() < 0.01, "{}", h.max());
        assert_eq!(decode(&encode(&h).unwrap(), "again").unwrap(), h);
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for (text, why) in [("not base64!", "not base64"), ("AAAAAAAAAAAA", "not an HdrHistogram")] {
            match decode(text, "ttft histogram") {
                Err(MetricsError::Corrupt { what, reason }) => {
                    assert_eq!(what, "ttft histogram");
                    assert!(reason.contains(why), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
        // A valid header whose compressed body is cut short.
        let text = encode(&sample()).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD.decode(&text).unwrap();
        let cut = base64::engine::general_purpose::STANDARD.encode(&bytes[..bytes.len() / 2]);
        assert!(matches!(decode(&cut, "cut"), Err(MetricsError::Corrupt { .. })));
    }
}
