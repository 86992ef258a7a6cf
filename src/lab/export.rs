//! What the lab exports: every run's metrics as one JSON document (settings now and, after
//! live changes, at the start; engine, status, history with its changes) and every evaluation
//! as CSV rows.

use super::Lab;
use crate::run::{Run, RunStatus};

impl Lab {
    /// Every run's metrics as one JSON document (config, status, history).
    pub fn metrics_json(&self) -> String {
        let runs: Vec<serde_json::Value> = self
            .runs
            .iter()
            .map(|r| {
                let status = match r.status() {
                    Some(RunStatus::Diverged(m)) => m.clone(),
                    Some(s) => format!("{s:?}").to_lowercase(),
                    None => r.error.clone().unwrap_or_default(),
                };
                let initial = r.run.as_ref().map(Run::initial_config).filter(|c| c.optimizer != r.spec.optimizer);
                serde_json::json!({
                    "label": r.label(),
                    "config": r.spec.config(&self.state.shared),
                    // The settings the run started with, when live changes (history.changes) moved them.
                    "initial_config": initial,
                    "engine": r.run.as_ref().map(Run::engine_name),
                    "status": status,
                    "steps": r.completed(),
                    "history": r.run.as_ref().map(|run| &run.history),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "samlab_version": env!("CARGO_PKG_VERSION"),
            "lab": self.state,
            "runs": runs,
        });
        serde_json::to_string_pretty(&doc).expect("JSON values serialise")
    }

    /// Every evaluation of every run as CSV, one row per (run, evaluation).
    pub fn metrics_csv(&self) -> String {
        let mut out = String::from("run,label,step,epoch,train_loss,train_acc,test_loss,test_acc,best_test_acc,clean_train_acc,memorized\n");
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        for (i, r) in self.runs.iter().enumerate() {
            let Some(run) = &r.run else { continue };
            let label = r.label().replace('"', "'");
            for e in &run.history.evals {
                out.push_str(&format!(
                    "{i},\"{label}\",{},{},{},{},{},{},{},{},{}\n",
                    e.step,
                    e.epoch,
                    e.train_loss,
                    e.train_acc,
                    e.test_loss,
                    e.test_acc,
                    e.best_test_acc,
                    opt(e.clean_train_acc),
                    opt(e.memorized)
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Lab, Preset};
    use crate::engine::EngineChoice;

    #[test]
    fn exports_hold_every_run() {
        let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::default());
        lab.set_all_playing(false);
        lab.step_once(0);
        let csv = lab.metrics_csv();
        assert!(csv.lines().nth(1).unwrap().starts_with("0,\"SGD\",0,"), "{csv}");
        let json: serde_json::Value = serde_json::from_str(&lab.metrics_json()).unwrap();
        assert_eq!(json["runs"].as_array().unwrap().len(), 2);
        assert!(json["runs"][0]["initial_config"].is_null() && json["runs"][0]["history"].get("changes").is_none());
        // A live change: the history names it, the initial settings stay beside the new ones.
        let mut spec = lab.state.runs[0].clone();
        spec.optimizer.lr = 0.02;
        lab.set_spec(0, spec).unwrap();
        let json: serde_json::Value = serde_json::from_str(&lab.metrics_json()).unwrap();
        let run = &json["runs"][0];
        assert_eq!(run["history"]["changes"][0], serde_json::json!({"step": 1, "field": "optimizer.lr", "old": "0.05", "new": "0.02"}));
        assert_eq!((run["config"]["optimizer"]["lr"].as_f64(), run["initial_config"]["optimizer"]["lr"].as_f64()), (Some(0.02), Some(0.05)));
    }
}
