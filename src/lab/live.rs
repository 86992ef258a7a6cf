//! Settings changed while a run trains, and reset. A change of live hyperparameters only (see
//! `hyper`: η, μ, weight decay, schedule, ρ, ξ, RW-SAM's λ, δ, target ESS, normalisation,
//! descent) on a run that has started and not ended applies from its next step, without a
//! rebuild, and is recorded in its history; any other change (optimizer, m, estimator, batch,
//! length, cadence, the shared data and model) rebuilds the run, as does any change of a run
//! that has not started or has ended. Reset returns a run to the shared initial weights and to
//! the settings it started with.

use super::{Lab, RunSpec};

impl Lab {
    /// Applies `spec` to run i live when only live hyperparameters differ and the run is
    /// training (started, not ended); returns false when the run must be rebuilt instead. A
    /// refused value leaves the run as it was, with the one-line error on the run.
    pub(super) fn apply_live(&mut self, i: usize, spec: &RunSpec) -> bool {
        let Some(r) = self.runs.get_mut(i) else { return false };
        let Some(run) = &mut r.run else { return false };
        let old = &r.spec;
        // Everything but the optimizer's settings as before (batch, length, cadence, spectrum…).
        let same_shape = RunSpec { optimizer: old.optimizer.clone(), ..spec.clone() } == *old;
        let started = run.completed_steps() > 0 || run.is_busy();
        if !same_shape || !crate::hyper::is_live(&old.optimizer, &spec.optimizer) || !started || run.is_done() {
            return false;
        }
        match run.set_hyperparameters(&spec.optimizer) {
            Ok(_) => {
                r.error = None;
                r.spec = spec.clone();
                self.state.runs[i] = spec.clone();
                self.state.preset = None;
            }
            Err(e) => r.error = Some(format!("not applied: {e}")),
        }
        true
    }

    /// Back to the shared initial weights and the settings the run started with (live changes
    /// undone), empty history: the same run again, step for step.
    pub fn reset(&mut self, i: usize) {
        let Some(r) = self.runs.get_mut(i) else { return };
        if let Some(run) = &mut r.run {
            match run.reset() {
                Ok(()) => {
                    r.error = None;
                    r.spec.optimizer = run.config.optimizer.clone();
                    if let Some(s) = self.state.runs.get_mut(i) {
                        s.optimizer = run.config.optimizer.clone();
                    }
                }
                Err(e) => r.error = Some(e.to_string()),
            }
        }
        if let Some(m) = &mut r.measuring {
            m.restart();
        }
        r.views.clear();
    }

    pub fn reset_all(&mut self) {
        for i in 0..self.runs.len() {
            self.reset(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Lab, Preset};
    use crate::config::OptimizerKind;
    use crate::engine::EngineChoice;

    #[test]
    fn live_changes_apply_without_a_rebuild_and_reset_undoes_them() {
        let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::default());
        lab.set_all_playing(false);
        // Before the first step a change is the run's starting point: nothing to record.
        let mut spec = lab.state.runs[1].clone();
        spec.optimizer.rho = 0.1;
        lab.set_spec(1, spec.clone()).unwrap();
        assert!(lab.runs[1].run.as_ref().unwrap().history.changes.is_empty());
        for _ in 0..10 {
            lab.step_once(1);
        }
        spec.optimizer.lr = 0.01;
        spec.optimizer.momentum = 0.5;
        lab.set_spec(1, spec.clone()).unwrap();
        let run = lab.runs[1].run.as_ref().unwrap();
        assert_eq!(run.completed_steps(), 10, "a live change does not restart the run");
        let fields: Vec<(u64, &str, &str, &str)> = run.history.changes.iter().map(|c| (c.step, c.field.as_str(), c.old.as_str(), c.new.as_str())).collect();
        assert_eq!(fields, [(10, "optimizer.lr", "0.05", "0.01"), (10, "optimizer.momentum", "0.9", "0.5")]);
        assert_eq!(lab.state.runs[1].optimizer.lr, 0.01);
        lab.step_once(1);
        assert_eq!(lab.runs[1].run.as_ref().unwrap().history.steps.last().unwrap().lr, 0.01);
        // Reset: the settings of the start (ρ = 0.1, η = 0.05), the weights, an empty history.
        lab.reset(1);
        let run = lab.runs[1].run.as_ref().unwrap();
        assert_eq!((run.config.optimizer.lr, run.config.optimizer.rho, run.config.optimizer.momentum), (0.05, 0.1, 0.9));
        assert_eq!(lab.state.runs[1].optimizer, run.config.optimizer);
        assert!(run.history.changes.is_empty() && run.completed_steps() == 0);
        // A structural change rebuilds: back to step 0 with the new optimizer.
        for _ in 0..3 {
            lab.step_once(1);
        }
        let mut spec = lab.state.runs[1].clone();
        spec.optimizer.kind = OptimizerKind::Asam;
        lab.set_spec(1, spec).unwrap();
        assert_eq!(lab.runs[1].completed(), 0);
        assert_eq!(lab.runs[1].run.as_ref().unwrap().config.optimizer.kind, OptimizerKind::Asam);
        // Any other setting of the run rebuilds it too, even with the optimizer's unchanged: the
        // Hessian spectrum switch needs a new measurer.
        let mut spec = lab.state.runs[1].clone();
        spec.measure_every = 50;
        lab.set_spec(1, spec.clone()).unwrap();
        for _ in 0..3 {
            lab.step_once(1);
        }
        spec.spectrum = true;
        lab.set_spec(1, spec).unwrap();
        assert_eq!(lab.runs[1].completed(), 0, "the spectrum switch must rebuild the run");
        assert!(lab.runs[1].measuring.is_some());
    }
}
