//! Parsing the resource strings of [`crate::Limits`] into numbers the runtime can enforce.

use std::time::Duration;

/// Why a memory quantity or a duration could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not a quantity of the form the CRD accepts.
    #[error(
        "invalid memory quantity `{0}`: expected a byte count such as 67108864, 64Mi, 1.5Gi or 128M"
    )]
    InvalidMemory(String),
    /// More bytes than fit in 64 bits.
    #[error("memory quantity `{0}` is too large")]
    MemoryTooLarge(String),
    /// Not a Go-style duration.
    #[error(
        "invalid duration `{value}`: {reason}; expected a duration such as 500ms, 30s or 1m30s"
    )]
    InvalidDuration {
        /// The rejected text.
        value: String,
        /// What was wrong with it.
        reason: String,
    },
}

/// Parses a Kubernetes memory quantity (`64Mi`, `1.5Gi`, `128M`, `1e9`, `67108864`) into bytes,
/// rounding a fractional byte count up, as Kubernetes does. Accepts what
/// [`crate::patterns::MEMORY_QUANTITY`] accepts.
pub fn parse_memory(value: &str) -> Result<u64, QuantityError> {
    let invalid = || QuantityError::InvalidMemory(value.to_owned());
    let too_large = || QuantityError::MemoryTooLarge(value.to_owned());

    let number_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(invalid());
    }

    let multiplier: u128 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        exponent if exponent.starts_with(['e', 'E']) => {
            let digits = &exponent[1..];
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            let exponent: u32 = digits.parse().map_err(|_| too_large())?;
            10u128.checked_pow(exponent).ok_or_else(too_large)?
        }
        _ => return Err(invalid()),
    };

    // value = digits / 10^fraction.len() * multiplier, computed exactly and rounded up.
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 38 {
        return Err(too_large());
    }
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| invalid())?
    };
    let scale = 10u128
        .checked_pow(u32::try_from(fraction.len()).map_err(|_| invalid())?)
        .ok_or_else(invalid)?;
    let bytes = mantissa
        .checked_mul(multiplier)
        .ok_or_else(too_large)?
        .div_ceil(scale);
    u64::try_from(bytes).map_err(|_| too_large())
}

/// Parses a Go-style duration (`500ms`, `30s`, `1m30s`), as Kubernetes' `metav1.Duration` does.
/// Negative durations are rejected.
pub fn parse_duration(value: &str) -> Result<Duration, QuantityError> {
    let invalid = |reason: String| QuantityError::InvalidDuration {
        value: value.to_owned(),
        reason,
    };
    if let Some(why) = out_of_range(value) {
        return Err(invalid(why.to_owned()));
    }
    let parsed: kube::core::Duration = value.parse().map_err(|e| invalid(format!("{e}")))?;
    if parsed.is_negative() {
        return Err(invalid("it is negative".to_owned()));
    }
    Ok(parsed.into())
}

/// Go's longest duration, in seconds: what fits in i64 nanoseconds (2562047h47m16s).
const MAX_SECONDS: f64 = 9_223_372_036.0;

/// Why the segments of a Go duration add up to something no duration holds, if they do. kube's
/// parser panics on these (a segment past `u64` seconds, a negative one such as `1h-5m`), so
/// they are refused first; anything else it reads or refuses itself.
fn out_of_range(value: &str) -> Option<&'static str> {
    let mut rest = value.trim_start_matches('+').trim_start_matches('-');
    let mut seconds = 0.0;
    // kube reads segment by segment and panics as it goes: bound what it would read before
    // any segment it would refuse.
    while !rest.is_empty() && rest != "0" {
        let Some(unit_start) = rest.find(char::is_alphabetic) else {
            break;
        };
        let (number, tail) = rest.split_at(unit_start);
        let unit_end = tail
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "\u{00b5}s" | "\u{03bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => break,
        };
        let Ok(number) = number.parse::<f64>() else {
            break;
        };
        if number.is_sign_negative() {
            return Some("only its first sign may be negative");
        }
        seconds += number * scale;
        rest = tail;
    }
    // Also catches infinity and NaN.
    let fits = seconds.is_finite() && seconds <= MAX_SECONDS;
    (!fits).then_some("it is longer than any duration (2562047h)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory() {
        assert_eq!(parse_memory("67108864"), Ok(67_108_864));
        assert_eq!(parse_memory("64Mi"), Ok(64 << 20));
        assert_eq!(parse_memory("1.5Gi"), Ok(3 << 29));
        assert_eq!(parse_memory("128M"), Ok(128_000_000));
        assert_eq!(parse_memory("1k"), Ok(1_000));
        assert_eq!(parse_memory("1Ki"), Ok(1_024));
        assert_eq!(parse_memory("1e9"), Ok(1_000_000_000));
        assert_eq!(parse_memory("1E3"), Ok(1_000));
        assert_eq!(parse_memory("0.5"), Ok(1), "fractional bytes round up");
        assert_eq!(parse_memory(".5Ki"), Ok(512));
        assert_eq!(parse_memory("1."), Ok(1));
        assert_eq!(parse_memory("0"), Ok(0));
        assert_eq!(parse_memory("8Ei"), Ok(8 << 60));
    }

    #[test]
    fn memory_errors() {
        for bad in [
            "", "Mi", ".", "64MB", "64 Mi", "-1", "1m", "1e", "1e-3", "1.2.3",
        ] {
            assert_eq!(
                parse_memory(bad),
                Err(QuantityError::InvalidMemory(bad.into())),
                "{bad}"
            );
        }
        for big in [
            "16Ei",
            "1e20",
            "1e400",
            "99999999999999999999999999999999999999999",
        ] {
            assert_eq!(
                parse_memory(big),
                Err(QuantityError::MemoryTooLarge(big.into())),
                "{big}"
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("-1s").is_err());
        let err = parse_duration("10").unwrap_err().to_string();
        assert!(err.contains("invalid duration `10`"), "{err}");
        assert!(parse_duration("ten seconds").is_err());
    }

    /// Found by the fuzzer (fuzz/artifacts/quantity): kube's parser panics on these.
    #[test]
    fn durations_past_any_duration_are_errors() {
        assert!(parse_duration("2562047h").is_ok());
        for bad in [
            "6266262226222620201m36m3",
            "2562048h",
            "1h-5m",
            "99999999999999999999h",
        ] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
