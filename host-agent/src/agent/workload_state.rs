//! What the agent is doing with one Workload, as one state machine: `Idle`, `Starting`,
//! `Running`, `Failed`. The reconciliation of that Workload feeds it what it sees (fenced, gone,
//! waiting for its assignment, wanted at some generation and values); the Workload's launch
//! feeds it how the start ended. [`step`] is the only place a state changes, and says what the
//! reconciler must do about it (start, stop, nothing); the status is computed from the state
//! ([`State::known`]). Pure: every transition is tested here, without an API server.
//!
//! Pulling back-off and a backend's back-off happen inside one start (the launcher, shared with
//! `host-agent run`), which the state sees as `Starting`; the status shows them
//! (`ImagePullBackOff`, `BackendBackOff`) from the launcher's observations.

use super::status::Known;
use crate::observed::Observed;

/// What runs, or is to run: a generation of the Workload, with a fingerprint of the values of
/// the ConfigMaps and Secrets it takes (`None`: they could not be read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub generation: Option<i64>,
    pub sources: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum State {
    /// Nothing is started here.
    #[default]
    Idle,
    /// Being pulled and started (what ran before serves meanwhile).
    Starting(Target),
    /// Started.
    Running(Target),
    /// Cannot start, for this reason, until the generation or its values change.
    Failed(Target, String),
}

/// What one reconciliation of the Workload sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// This host's Lease may have run out: nothing runs here.
    Fenced,
    /// Deleted, or no longer assigned to this host (why).
    Gone(&'static str),
    /// Assigned here, but not yet for its current generation: what runs keeps running.
    Waiting,
    /// Assigned here for `Target`.
    Wanted(Target),
    /// Assigned here for this generation, but its ConfigMaps or Secrets cannot be read (why).
    Unreadable(Option<i64>, String),
}

/// What changes a Workload's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Reconciled(Seen),
    /// The start of `Target` ended: it runs.
    Started(Target),
    /// The start of `Target` ended: it cannot run (why).
    StartFailed(Target, String),
    /// The start of `Target` was called off: the API server did not confirm the assignment.
    Unconfirmed(Target),
}

/// What the reconciler does after a transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Nothing,
    /// Start `Target` in a task of its own, calling off a start under way.
    Start(Target),
    /// Call off a start under way and stop what runs, saying why.
    Stop(&'static str),
}

/// Why everything stops while fenced.
pub const FENCED: &str = "this host could not renew its Lease, so the operator may move its \
                          Workloads; they run again here if they are still assigned when it can";

/// The next state, and what to do about it.
pub fn step(state: &State, event: Event) -> (State, Effect) {
    use State::*;
    match event {
        Event::Reconciled(Seen::Fenced) => (Idle, Effect::Stop(FENCED)),
        Event::Reconciled(Seen::Gone(why)) => (Idle, Effect::Stop(why)),
        Event::Reconciled(Seen::Waiting) => (state.clone(), Effect::Nothing),
        Event::Reconciled(Seen::Wanted(target)) => match state {
            Starting(t) | Running(t) | Failed(t, _) if *t == target => {
                (state.clone(), Effect::Nothing)
            }
            _ => (Starting(target), Effect::Start(target)),
        },
        Event::Reconciled(Seen::Unreadable(generation, why)) => match state {
            // What runs keeps the values it has, as a Pod keeps its environment.
            Starting(t) | Running(t) if t.generation == generation => {
                (state.clone(), Effect::Nothing)
            }
            _ => {
                let target = Target {
                    generation,
                    sources: None,
                };
                (Failed(target, why), Effect::Nothing)
            }
        },
        // The outcome of a start that is still the one under way; another one's is stale.
        Event::Started(target) if *state == Starting(target) => (Running(target), Effect::Nothing),
        Event::StartFailed(target, why) if *state == Starting(target) => {
            (Failed(target, why), Effect::Nothing)
        }
        Event::Unconfirmed(target) if *state == Starting(target) => (Idle, Effect::Nothing),
        Event::Started(_) | Event::StartFailed(..) | Event::Unconfirmed(_) => {
            (state.clone(), Effect::Nothing)
        }
    }
}

impl State {
    /// What the status says, given what the launcher observes of the Workload now.
    pub fn known<'a>(&'a self, observed: Option<&'a Observed>) -> Known<'a> {
        match (self, observed) {
            (State::Failed(_, why), observed) => Known::Failed(why, observed),
            (_, Some(observed)) => Known::Observed(observed),
            (State::Starting(_), None) => Known::Launching,
            (_, None) => Known::Stopped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(generation: i64, sources: u64) -> Target {
        Target {
            generation: Some(generation),
            sources: Some(sources),
        }
    }

    fn seen(seen: Seen) -> Event {
        Event::Reconciled(seen)
    }

    #[test]
    fn a_wanted_generation_starts_once_and_runs() {
        let (state, effect) = step(&State::Idle, seen(Seen::Wanted(at(1, 0))));
        assert_eq!(
            (&state, &effect),
            (&State::Starting(at(1, 0)), &Effect::Start(at(1, 0)))
        );
        // Reconciled again while it starts, or once it runs: nothing more.
        assert_eq!(
            step(&state, seen(Seen::Wanted(at(1, 0)))).1,
            Effect::Nothing
        );
        let (state, effect) = step(&state, Event::Started(at(1, 0)));
        assert_eq!(
            (&state, &effect),
            (&State::Running(at(1, 0)), &Effect::Nothing)
        );
        assert_eq!(
            step(&state, seen(Seen::Wanted(at(1, 0)))),
            (state, Effect::Nothing)
        );
    }

    #[test]
    fn a_new_generation_or_new_values_start_again() {
        let running = State::Running(at(1, 0));
        for next in [at(2, 0), at(1, 7)] {
            assert_eq!(
                step(&running, seen(Seen::Wanted(next))),
                (State::Starting(next), Effect::Start(next))
            );
        }
        // A start under way is replaced by the newer one (the reconciler calls it off).
        let starting = State::Starting(at(2, 0));
        assert_eq!(
            step(&starting, seen(Seen::Wanted(at(3, 0)))),
            (State::Starting(at(3, 0)), Effect::Start(at(3, 0)))
        );
        // Until the operator records the assignment of the new generation, what runs stays.
        assert_eq!(
            step(&running, seen(Seen::Waiting)),
            (running, Effect::Nothing)
        );
    }

    #[test]
    fn a_failed_start_waits_for_a_change() {
        let starting = State::Starting(at(1, 0));
        let (failed, _) = step(
            &starting,
            Event::StartFailed(at(1, 0), "no such image".into()),
        );
        assert_eq!(failed, State::Failed(at(1, 0), "no such image".into()));
        assert_eq!(
            step(&failed, seen(Seen::Wanted(at(1, 0)))).1,
            Effect::Nothing
        );
        assert_eq!(
            step(&failed, seen(Seen::Wanted(at(2, 0)))).1,
            Effect::Start(at(2, 0))
        );
        let Known::Failed(why, None) = failed.known(None) else {
            panic!("a failed start is reported failed");
        };
        assert_eq!(why, "no such image");
    }

    #[test]
    fn the_outcome_of_a_replaced_start_is_ignored() {
        let starting = State::Starting(at(2, 0));
        for stale in [
            Event::Started(at(1, 0)),
            Event::StartFailed(at(1, 0), "old".into()),
            Event::Unconfirmed(at(1, 0)),
        ] {
            assert_eq!(step(&starting, stale), (starting.clone(), Effect::Nothing));
        }
        // Once stopped, a late outcome does not bring it back.
        assert_eq!(step(&State::Idle, Event::Started(at(2, 0))).0, State::Idle);
    }

    #[test]
    fn an_unconfirmed_start_is_asked_again() {
        let (state, _) = step(&State::Starting(at(1, 0)), Event::Unconfirmed(at(1, 0)));
        assert_eq!(state, State::Idle);
        assert_eq!(
            step(&state, seen(Seen::Wanted(at(1, 0)))).1,
            Effect::Start(at(1, 0))
        );
    }

    #[test]
    fn fenced_deleted_or_moved_stops_from_every_state() {
        let states = [
            State::Idle,
            State::Starting(at(1, 0)),
            State::Running(at(1, 0)),
            State::Failed(at(1, 0), "x".into()),
        ];
        for state in states {
            assert_eq!(
                step(&state, seen(Seen::Fenced)),
                (State::Idle, Effect::Stop(FENCED))
            );
            assert_eq!(
                step(&state, seen(Seen::Gone("moved"))),
                (State::Idle, Effect::Stop("moved"))
            );
        }
        // After the fence lifts, it starts again if it is still wanted.
        assert_eq!(
            step(&State::Idle, seen(Seen::Wanted(at(1, 0)))).1,
            Effect::Start(at(1, 0))
        );
    }

    #[test]
    fn unreadable_values_keep_what_runs_and_fail_what_does_not() {
        let running = State::Running(at(1, 5));
        let unreadable = || seen(Seen::Unreadable(Some(1), "ConfigMap gone".into()));
        assert_eq!(
            step(&running, unreadable()),
            (running.clone(), Effect::Nothing)
        );
        let (failed, effect) = step(&State::Idle, unreadable());
        assert_eq!(effect, Effect::Nothing);
        assert!(matches!(failed, State::Failed(_, ref why) if why == "ConfigMap gone"));
        // A new generation whose values cannot be read fails; the old one keeps serving.
        let (failed, effect) = step(&running, seen(Seen::Unreadable(Some(2), "gone".into())));
        assert_eq!(effect, Effect::Nothing);
        assert!(matches!(failed, State::Failed(t, _) if t.generation == Some(2)));
        // Readable again: it starts.
        assert_eq!(
            step(&failed, seen(Seen::Wanted(at(2, 6)))).1,
            Effect::Start(at(2, 6))
        );
    }

    #[test]
    fn the_status_follows_the_state() {
        assert!(matches!(State::Idle.known(None), Known::Stopped));
        assert!(matches!(
            State::Starting(at(1, 0)).known(None),
            Known::Launching
        ));
        assert!(matches!(
            State::Running(at(1, 0)).known(None),
            Known::Stopped
        ));
    }
}
