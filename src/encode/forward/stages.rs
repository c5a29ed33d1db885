//! Stage timing for forward passes: [`StageTimes`] adds up the time of each named stage, and
//! [`FfnLabels`] names the feed-forward stages with the model's own sizes. A leaf: every
//! forward implementation imports it, and it imports none of them.

use std::time::Duration;

/// Time spent in each stage of forward passes (and whatever the caller times around them), in
/// the order stages first ran; stages of several calls add up. Filled by
/// [`crate::encode::forward::Forward::forward`] and `Embedder::embed_profiled`.
#[derive(Debug, Clone, Default)]
pub struct StageTimes {
    stages: Vec<(String, Duration)>,
}

impl StageTimes {
    pub fn stages(&self) -> &[(String, Duration)] {
        &self.stages
    }

    pub fn total(&self) -> Duration {
        self.stages.iter().map(|(_, d)| *d).sum()
    }

    pub fn add(&mut self, stage: &str, time: Duration) {
        match self.stages.iter_mut().find(|(s, _)| s == stage) {
            Some((_, d)) => *d += time,
            None => self.stages.push((stage.to_string(), time)),
        }
    }

    /// Shares the wall time of a parallel region among its stages in proportion to the
    /// thread time each took, since the stages overlap across threads.
    pub fn add_split(&mut self, wall: Duration, parts: &[(&str, Duration)]) {
        let threads: Duration = parts.iter().map(|(_, d)| *d).sum();
        for &(stage, d) in parts {
            let share = if threads.is_zero() {
                Duration::ZERO
            } else {
                wall.mul_f64(d.as_secs_f64() / threads.as_secs_f64())
            };
            self.add(stage, share);
        }
    }
}

/// The names of the two feed-forward matrix stages, with the model's sizes in them
/// (all-MiniLM-L6-v2: "FFN in (384→1536) + bias"), the same for every forward implementation
/// so that their profiles line up. Built once when a model is loaded.
#[derive(Debug, Clone)]
pub struct FfnLabels {
    pub input: String,
    pub output: String,
}

impl FfnLabels {
    pub fn new(hidden: usize, intermediate: usize) -> Self {
        FfnLabels {
            input: format!("FFN in ({hidden}→{intermediate}) + bias"),
            output: format!("FFN out ({intermediate}→{hidden}) + bias + residual"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_add_up_in_first_run_order() {
        let mut t = StageTimes::default();
        t.add("b", Duration::from_millis(2));
        t.add("a", Duration::from_millis(1));
        t.add("b", Duration::from_millis(3));
        let names: Vec<&str> = t.stages().iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(t.stages()[0].1, Duration::from_millis(5));
        assert_eq!(t.total(), Duration::from_millis(6));
    }

    #[test]
    fn a_parallel_region_is_shared_by_thread_time() {
        let mut t = StageTimes::default();
        t.add_split(
            Duration::from_millis(10),
            &[
                ("x", Duration::from_millis(30)),
                ("y", Duration::from_millis(10)),
            ],
        );
        assert_eq!(t.stages()[0].1, Duration::from_micros(7500));
        assert_eq!(t.stages()[1].1, Duration::from_micros(2500));
    }

    #[test]
    fn ffn_labels_carry_the_model_sizes() {
        let l = FfnLabels::new(384, 1536);
        assert_eq!(l.input, "FFN in (384→1536) + bias");
        assert_eq!(l.output, "FFN out (1536→384) + bias + residual");
    }
}
