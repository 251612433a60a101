//! Parameter enums by name: one typed error, and `FromStr`/`Display` for every enum that has
//! a command-line spelling (`-fa on`, `-sm row`, `-lm mmap`, `--numa isolate`, `-o json`,
//! `-ctk q8_0`), so the binary, the Python bindings and library users parse them the same way.

/// A value that is not one of a parameter's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: expected {}", expected.join(", "))]
#[non_exhaustive]
pub struct ParseValueError {
    /// The parameter (`flash attention`, `split mode`, ...).
    pub what: &'static str,
    /// The value given.
    pub value: String,
    /// The names it takes.
    pub expected: &'static [&'static str],
}

impl ParseValueError {
    pub(crate) fn new(what: &'static str, value: &str, expected: &'static [&'static str]) -> Self {
        ParseValueError { what, value: value.to_string(), expected }
    }
}

/// `FromStr` (through the type's `from_name`) and `Display` (its `name`) for a parameter enum.
macro_rules! by_name {
    ($t:ty, $what:literal, [$($name:literal),* $(,)?]) => {
        by_name!(@from_str $t, $what, [$($name),*]);
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
    (@from_str $t:ty, $what:literal, [$($name:literal),* $(,)?]) => {
        impl std::str::FromStr for $t {
            type Err = $crate::names::ParseValueError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$t>::from_name(s).ok_or_else(|| $crate::names::ParseValueError::new($what, s, &[$($name),*]))
            }
        }
    };
}

by_name!(crate::LoadMode, "load mode", ["auto", "none", "mmap", "mlock", "mmap+mlock", "dio"]);
by_name!(crate::LazyMode, "lazy mode", ["on", "auto", "off"]);
by_name!(crate::SplitMode, "split mode", ["none", "layer", "row", "tensor"]);
by_name!(crate::Numa, "NUMA mode", ["distribute", "isolate", "numactl", "disabled"]);
by_name!(crate::FlashAttn, "flash attention", ["on", "off", "auto", "1", "0", "-1"]);
// GgmlType has its own Display (the ggml name).
by_name!(@from_str crate::gguf::GgmlType, "ggml type", ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"]);
#[cfg(feature = "bench")]
by_name!(crate::bench::output::OutputFormat, "output format", ["md", "csv", "json", "jsonl", "sql"]);

#[cfg(test)]
mod tests {
    use crate::{FlashAttn, LazyMode, LoadMode, Numa, SplitMode};

    fn round_trip<T>(all: &[T])
    where
        T: std::str::FromStr<Err = super::ParseValueError> + std::fmt::Display + PartialEq + std::fmt::Debug,
    {
        for v in all {
            assert_eq!(&v.to_string().parse::<T>().unwrap(), v);
        }
    }

    #[test]
    fn every_name_round_trips_and_bad_ones_are_typed() {
        round_trip(&LoadMode::ALL);
        round_trip(&LazyMode::ALL);
        round_trip(&[SplitMode::None, SplitMode::Layer, SplitMode::Row, SplitMode::Tensor]);
        round_trip(&[Numa::Distribute, Numa::Isolate, Numa::Numactl, Numa::Disabled]);
        round_trip(&[FlashAttn::On, FlashAttn::Off, FlashAttn::Auto]);
        #[cfg(feature = "bench")]
        round_trip(&crate::bench::output::OutputFormat::ALL);
        // llama-bench's numeric and llama-perplexity's word spellings of -fa are one parser.
        for (s, v) in [("1", FlashAttn::On), ("true", FlashAttn::On), ("enabled", FlashAttn::On), ("0", FlashAttn::Off)]
        {
            assert_eq!(s.parse::<FlashAttn>().unwrap(), v);
        }
        assert_eq!("-1".parse::<FlashAttn>().unwrap(), FlashAttn::Auto);
        let e = "sideways".parse::<SplitMode>().unwrap_err();
        assert_eq!((e.what, e.value.as_str()), ("split mode", "sideways"));
        assert_eq!(e.to_string(), "invalid split mode \"sideways\": expected none, layer, row, tensor");
        assert!("q4_k".parse::<crate::gguf::GgmlType>().is_ok());
        assert!("q9".parse::<crate::gguf::GgmlType>().unwrap_err().to_string().contains("ggml type"));
    }
}
