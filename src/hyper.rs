//! Hyperparameters that may change while a run trains: which fields of `OptimizerConfig` are
//! live (η, μ, weight decay, the schedule, ρ, ξ, RW-SAM's λ, δ, target ESS, normalisation and
//! descent) and which are structural (the optimizer, m, RW-SAM's estimator: they shape the
//! engine's buffers and dispatches, so changing them needs a new run), and the difference of two
//! settings as field-named entries (`optimizer.lr`, "0.05", "0.02") for the run's history.

use crate::config::OptimizerConfig;
use crate::error::{Error, Result};

/// Refuses a change of a structural field, naming it and the value the run keeps.
pub fn check_structure(old: &OptimizerConfig, new: &OptimizerConfig) -> Result<()> {
    let fixed =
        |field: &str, new: String, old: String| Err(Error::invalid(field, new, format!("{old}, fixed while the run trains (changing it restarts the run)")));
    if old.kind != new.kind {
        return fixed("optimizer.kind", new.kind.as_str().into(), old.kind.as_str().into());
    }
    if old.m != new.m {
        return fixed("optimizer.m", new.m.to_string(), old.m.to_string());
    }
    if old.rwsam.estimator != new.rwsam.estimator {
        return fixed("optimizer.rwsam.estimator", new.rwsam.estimator.as_str().into(), old.rwsam.estimator.as_str().into());
    }
    Ok(())
}

/// True when `new` differs from `old` in live fields only (or not at all).
pub fn is_live(old: &OptimizerConfig, new: &OptimizerConfig) -> bool {
    check_structure(old, new).is_ok()
}

/// Every live field that differs, in a fixed order: (field, old value, new value).
pub fn diff(old: &OptimizerConfig, new: &OptimizerConfig) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut num = |field: &str, a: f64, b: f64| {
        if a.to_bits() != b.to_bits() {
            out.push((field.to_string(), a.to_string(), b.to_string()));
        }
    };
    num("optimizer.lr", old.lr, new.lr);
    num("optimizer.momentum", old.momentum, new.momentum);
    num("optimizer.weight_decay", old.weight_decay, new.weight_decay);
    num("optimizer.rho", old.rho, new.rho);
    num("optimizer.xi", old.xi, new.xi);
    num("optimizer.rwsam.lambda", old.rwsam.lambda, new.rwsam.lambda);
    num("optimizer.rwsam.delta", old.rwsam.delta, new.rwsam.delta);
    let name = |v: &dyn std::fmt::Debug| format!("{v:?}").to_lowercase();
    let (a, b) = (&old.rwsam, &new.rwsam);
    for (field, x, y) in [
        ("optimizer.schedule", name(&old.schedule), name(&new.schedule)),
        ("optimizer.rwsam.target_ess", a.target_ess.map_or("none".into(), |r| r.to_string()), b.target_ess.map_or("none".into(), |r| r.to_string())),
        ("optimizer.rwsam.normalize", a.normalize.to_string(), b.normalize.to_string()),
        ("optimizer.rwsam.descent", name(&a.descent), name(&b.descent)),
    ] {
        if x != y {
            out.push((field.to_string(), x, y));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NormEstimator, OptimizerKind, Schedule};

    #[test]
    fn live_fields_diff_and_structural_fields_are_refused_by_name() {
        let old = OptimizerConfig { kind: OptimizerKind::Rwsam, ..OptimizerConfig::default() };
        let mut new = old.clone();
        assert!(diff(&old, &new).is_empty());
        new.lr = 0.02;
        new.schedule = Schedule::Cosine;
        new.rwsam.target_ess = Some(0.5);
        let d = diff(&old, &new);
        assert_eq!(d[0], ("optimizer.lr".into(), "0.05".into(), "0.02".into()));
        assert_eq!(d[1], ("optimizer.schedule".into(), "constant".into(), "cosine".into()));
        assert_eq!(d[2], ("optimizer.rwsam.target_ess".into(), "none".into(), "0.5".into()));
        assert!(is_live(&old, &new));
        for (field, change) in [
            ("optimizer.kind", (|o: &mut OptimizerConfig| o.kind = OptimizerKind::Sam) as fn(&mut OptimizerConfig)),
            ("optimizer.m", |o| o.m = 4),
            ("optimizer.rwsam.estimator", |o| o.rwsam.estimator = NormEstimator::FiniteDifference),
        ] {
            let mut bad = new.clone();
            change(&mut bad);
            let e = check_structure(&old, &bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid {field} = ")) && e.contains("restarts the run") && !e.contains('\n'), "{e}");
        }
    }
}
