//! The scalar type of the CPU engine: `f64` for the reference and the one-step oracle, `f32` for
//! the run-time path. Both go through `matrixmultiply`'s GEMM, which also compiles to wasm.

use num_traits::{Float, FromPrimitive, ToPrimitive};
use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

pub trait Real: Float + FromPrimitive + ToPrimitive + AddAssign + SubAssign + MulAssign + DivAssign + Sum + Default + Debug + Send + Sync + 'static {
    /// C (m×n) = alpha·op(A)·op(B) + beta·C, with A given as m×k and B as k×n through strides
    /// (row stride, column stride), so transposes cost nothing.
    #[allow(clippy::too_many_arguments)]
    fn gemm_strided(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: &[Self],
        rsa: isize,
        csa: isize,
        b: &[Self],
        rsb: isize,
        csb: isize,
        beta: Self,
        c: &mut [Self],
        rsc: isize,
        csc: isize,
    );

    fn of(x: f64) -> Self {
        Self::from_f64(x).expect("finite f64 fits")
    }

    fn f64(self) -> f64 {
        self.to_f64().unwrap_or(f64::NAN)
    }
}

macro_rules! impl_real {
    ($t:ty, $gemm:path) => {
        impl Real for $t {
            fn gemm_strided(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: &[Self],
                rsa: isize,
                csa: isize,
                b: &[Self],
                rsb: isize,
                csb: isize,
                beta: Self,
                c: &mut [Self],
                rsc: isize,
                csc: isize,
            ) {
                if m == 0 || n == 0 {
                    return;
                }
                let last =
                    |rows: usize, cols: usize, rs: isize, cs: isize| (rows.saturating_sub(1) as isize * rs + cols.saturating_sub(1) as isize * cs) as usize;
                assert!(k == 0 || last(m, k, rsa, csa) < a.len(), "gemm: A too short");
                assert!(k == 0 || last(k, n, rsb, csb) < b.len(), "gemm: B too short");
                assert!(last(m, n, rsc, csc) < c.len(), "gemm: C too short");
                // SAFETY: the asserts above keep every element that the strides address inside
                // the slices; matrixmultiply reads A and B and writes only C.
                #[allow(unsafe_code)]
                unsafe {
                    $gemm(m, k, n, alpha, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, beta, c.as_mut_ptr(), rsc, csc);
                }
            }
        }
    };
}

/// Row-major convenience: C (m×n) = alpha·op(A)·op(B) + beta·C where op(A) is m×k, op(B) is k×n,
/// A stored row-major as (m×k) or, with `ta`, as (k×m); likewise B with `tb`.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Real>(ta: bool, tb: bool, m: usize, k: usize, n: usize, alpha: T, a: &[T], b: &[T], beta: T, c: &mut [T]) {
    let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
    T::gemm_strided(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, n as isize, 1);
}

impl_real!(f32, matrixmultiply::sgemm);
impl_real!(f64, matrixmultiply::dgemm);
