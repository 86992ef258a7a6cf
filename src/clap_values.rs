//! The core's enumerated settings as clap `ValueEnum`s (so `--help` lists them): here, beside
//! the types, because the orphan rule keeps the command line's crate from implementing a foreign
//! trait for them. Native builds only (the `clap` feature).

use crate::config::{Backend, NormEstimator, OptimizerKind, RwDescent, Schedule};
use crate::metrics::directions::Directions;
use crate::model::Activation;

/// `impl ValueEnum` for an enum from its variants and their names (aliases after `|`); the
/// command line uses it for its own enums too.
#[macro_export]
macro_rules! value_enum {
    ($t:ty { $($v:expr => $name:literal $(| $alias:literal)*),* $(,)? }) => {
        impl clap::ValueEnum for $t {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($v),*]
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                $(if *self == $v { return Some(clap::builder::PossibleValue::new($name)$(.alias($alias))*); })*
                None
            }
        }
    };
}

value_enum!(OptimizerKind {
    OptimizerKind::Sgd => "sgd", OptimizerKind::Usam => "usam", OptimizerKind::Sam => "sam", OptimizerKind::Nsam => "nsam" | "n-sam",
    OptimizerKind::Nusam => "nusam" | "n-usam",
    OptimizerKind::Msam => "msam" | "m-sam", OptimizerKind::Musam => "musam" | "m-usam", OptimizerKind::Asam => "asam",
    OptimizerKind::Rwsam => "rwsam" | "rw-sam",
});
value_enum!(NormEstimator { NormEstimator::Exact => "exact", NormEstimator::FiniteDifference => "finite-difference" | "fd" | "finite_difference" });
value_enum!(RwDescent { RwDescent::Uniform => "uniform", RwDescent::Weighted => "weighted" });
value_enum!(Schedule { Schedule::Constant => "constant", Schedule::Cosine => "cosine" });
value_enum!(Backend { Backend::Cpu => "cpu", Backend::Gpu => "gpu", Backend::Auto => "auto" });
value_enum!(Activation { Activation::Relu => "relu", Activation::Tanh => "tanh", Activation::Gelu => "gelu" });

value_enum!(Directions { Directions::Random => "random", Directions::Pca => "pca", Directions::Hessian => "hessian" });
