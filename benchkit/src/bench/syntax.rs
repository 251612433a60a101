//! llama-bench's value syntax for the model-loading, offload and fit flags: `,` separates the
//! values a sweep goes through, as for every llama-bench flag; some values have an inner
//! syntax (`/` between devices, `;` between tensor overrides). Integer lists and ranges are
//! [`parse_int_list`]'s.

use super::params::{parse_int_list, parse_u32_list, ParamError};
use crate::backend::Numa;
use crate::model::{DeviceSelection, LazyMode, LoadMode, TensorBuftOverride};

fn err(param: &str, value: &str, reason: impl Into<String>) -> ParamError {
    ParamError::Parse { param: param.to_string(), value: value.to_string(), reason: reason.into() }
}

/// A `0|1` list (`--repack`, `--no-host`, `-nopo`, ...): `0,1` sweeps both. `true`/`false`,
/// `on`/`off` and `yes`/`no` are read too.
///
/// # Errors
/// [`ParamError::Parse`] for any other item.
pub fn parse_bool_list(param: &str, s: &str) -> Result<Vec<bool>, ParamError> {
    s.split(',')
        .map(|v| match v.trim() {
            "1" | "true" | "on" | "yes" => Ok(true),
            "0" | "false" | "off" | "no" => Ok(false),
            _ => Err(err(param, v, "expected 0 or 1")),
        })
        .collect()
}

/// `-lm`: a list of `auto`, `none`, `mmap`, `mlock`, `mmap+mlock`, `dio`.
///
/// # Errors
/// [`ParamError::Parse`] for an unknown mode.
pub fn parse_load_modes(s: &str) -> Result<Vec<LoadMode>, ParamError> {
    s.split(',')
        .map(|v| {
            LoadMode::from_name(v.trim())
                .ok_or_else(|| err("-lm", v, "expected auto, none, mmap, mlock, mmap+mlock or dio"))
        })
        .collect()
}

/// `-lzm`: a list of `on`, `auto`, `off`.
///
/// # Errors
/// [`ParamError::Parse`] for an unknown mode.
pub fn parse_lazy_modes(s: &str) -> Result<Vec<LazyMode>, ParamError> {
    s.split(',')
        .map(|v| LazyMode::from_name(v.trim()).ok_or_else(|| err("-lzm", v, "expected on, auto or off")))
        .collect()
}

/// `-dev`: device sets separated by `,`; in each, `auto`, `none`, or device names separated by
/// `/` (`CUDA0/CUDA1,CUDA0`). Names are checked against the registry when the model loads (or
/// with [`DeviceSelection::canonical`]).
///
/// # Errors
/// [`ParamError::Parse`] for an empty set or an empty name (`CUDA0//CUDA1`).
pub fn parse_device_lists(s: &str) -> Result<Vec<DeviceSelection>, ParamError> {
    s.split(',')
        .map(|set| {
            let set = set.trim();
            match set {
                "" => Err(err("-dev", set, "no devices specified")),
                "auto" => Ok(DeviceSelection::Auto),
                "none" => Ok(DeviceSelection::None),
                _ => set
                    .split('/')
                    .map(|name| match name.trim() {
                        "" => Err(err("-dev", set, "invalid device specification: an empty device name")),
                        n => Ok(n.to_string()),
                    })
                    .collect::<Result<_, _>>()
                    .map(DeviceSelection::Only),
            }
        })
        .collect()
}

/// `-ot`: override sets separated by `,`; in each, `pattern=buffer_type` items separated by
/// `;` (`blk\.[0-9]\.=CPU;exps=CPU,` sweeps that set and no overrides). An empty set means no
/// overrides; empty items (a trailing `;`) are skipped. The pattern is everything before the
/// first `=`. Buffer types are checked when the model loads (or with
/// [`TensorBuftOverride::validate`]).
///
/// # Errors
/// [`ParamError::Parse`] for an item without `=` or with an empty buffer type.
pub fn parse_tensor_overrides(s: &str) -> Result<Vec<Vec<TensorBuftOverride>>, ParamError> {
    s.split(',')
        .map(|set| {
            set.split(';')
                .filter(|item| !item.is_empty())
                .map(|item| match item.split_once('=') {
                    Some((_, "")) => Err(err("-ot", item, "no buffer type after '='")),
                    Some((pattern, buft)) => Ok(TensorBuftOverride::new(pattern, buft)),
                    None => Err(err("-ot", item, "expected <tensor name pattern>=<buffer type>")),
                })
                .collect()
        })
        .collect()
}

/// `-fitt`: MiB to leave free per device, a list (0 = no fit).
///
/// # Errors
/// [`ParamError::Parse`] for a negative or non-integer value.
pub fn parse_fit_targets(s: &str) -> Result<Vec<u64>, ParamError> {
    parse_int_list("-fitt", s)?
        .into_iter()
        .map(|v| u64::try_from(v).map_err(|_| err("-fitt", &v.to_string(), "must be >= 0")))
        .collect()
}

/// `-fitc`: smallest context the fit may choose, a list (0 = no fit).
///
/// # Errors
/// [`ParamError::Parse`].
pub fn parse_fit_ctx(s: &str) -> Result<Vec<u32>, ParamError> {
    parse_u32_list("-fitc", s)
}

/// `--numa`: `distribute` (also an empty value), `isolate` or `numactl`.
///
/// # Errors
/// [`ParamError::Parse`] for anything else.
pub fn parse_numa(s: &str) -> Result<Numa, ParamError> {
    Numa::from_name(s).ok_or_else(|| err("--numa", s, "expected distribute, isolate or numactl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bool_lists_sweep() {
        assert_eq!(parse_bool_list("--repack", "0,1").unwrap(), [false, true]);
        assert_eq!(parse_bool_list("-nopo", "1").unwrap(), [true]);
        assert_eq!(parse_bool_list("--no-host", "true, off").unwrap(), [true, false]);
        assert!(parse_bool_list("--repack", "2").is_err());
        assert!(parse_bool_list("--repack", "0,").is_err());
    }

    #[test]
    fn load_and_lazy_modes() {
        assert_eq!(
            parse_load_modes("auto,none,mmap,mlock,mmap+mlock,dio").unwrap(),
            [LoadMode::Auto, LoadMode::None, LoadMode::Mmap, LoadMode::Mlock, LoadMode::MmapMlock, LoadMode::DirectIo]
        );
        assert!(parse_load_modes("mmap,direct").is_err());
        assert_eq!(parse_lazy_modes("on,auto,off").unwrap(), [LazyMode::On, LazyMode::Auto, LazyMode::Off]);
        assert!(parse_lazy_modes("lazy").is_err());
    }

    #[test]
    fn device_sets() {
        let only = |v: &[&str]| DeviceSelection::Only(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            parse_device_lists("CUDA0/CUDA1,none,auto, Vulkan0 ").unwrap(),
            [only(&["CUDA0", "CUDA1"]), DeviceSelection::None, DeviceSelection::Auto, only(&["Vulkan0"])]
        );
        assert!(matches!(parse_device_lists(""), Err(ParamError::Parse { .. })));
        assert!(parse_device_lists("CUDA0,").is_err());
        assert!(parse_device_lists("CUDA0//CUDA1").is_err());
        // `none` only means no device on its own
        assert_eq!(parse_device_lists("none/CUDA0").unwrap(), [only(&["none", "CUDA0"])]);
    }

    #[test]
    fn override_sets() {
        let o = TensorBuftOverride::new;
        assert_eq!(
            parse_tensor_overrides(r"blk\.0\.=CPU;exps=CUDA0,,ffn=CPU;").unwrap(),
            vec![vec![o(r"blk\.0\.", "CPU"), o("exps", "CUDA0")], vec![], vec![o("ffn", "CPU")]]
        );
        assert_eq!(parse_tensor_overrides("").unwrap(), vec![Vec::<TensorBuftOverride>::new()]);
        // the pattern ends at the first '=': a regex may not hold one, a buffer type name may
        assert_eq!(parse_tensor_overrides("a=b=c").unwrap(), vec![vec![o("a", "b=c")]]);
        assert_eq!(parse_tensor_overrides("=CPU").unwrap(), vec![vec![o("", "CPU")]]);
        assert!(parse_tensor_overrides("blk.0").is_err());
        assert!(parse_tensor_overrides("blk=").is_err());
    }

    #[test]
    fn fit_and_numa() {
        assert_eq!(parse_fit_targets("0,512,1024").unwrap(), [0, 512, 1024]);
        assert_eq!(parse_fit_targets("256-1024*2").unwrap(), [256, 512, 1024]);
        assert!(parse_fit_targets("-1").is_err());
        assert_eq!(parse_fit_ctx("4096,8192").unwrap(), [4096, 8192]);
        assert!(parse_fit_ctx("x").is_err());
        assert_eq!(parse_numa("distribute").unwrap(), Numa::Distribute);
        assert_eq!(parse_numa("").unwrap(), Numa::Distribute);
        assert_eq!(parse_numa("isolate").unwrap(), Numa::Isolate);
        assert_eq!(parse_numa("numactl").unwrap(), Numa::Numactl);
        assert!(parse_numa("mirror").is_err());
    }
}
