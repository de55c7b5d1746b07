//! The fair-share rules on their own, and on a simulated cluster with simulated time: caps that
//! hold, shares that follow the weights, and a small job that is not held up by a tenant that
//! filled the cluster first.

use super::*;
use std::collections::VecDeque;

#[test]
fn a_capped_tenant_is_refused_without_holding_others_back() {
    let now = Instant::now();
    let mut s = Shares::default();
    s.set_tenant("acme", 1, Some(2));
    s.set_job_tenant("a1", "acme");
    s.set_job_tenant("a2", "acme");
    s.set_job_tenant("b1", "globex");
    for _ in 0..2 {
        assert_eq!(s.may_take("a1", now), Ok(()));
        s.took("a1", now);
    }
    assert_eq!(s.may_take("a2", now), Err(Refusal::Capped), "the cap is the tenant's");
    s.refused("a2", Refusal::Capped, now);
    assert_eq!(s.may_take("b1", now), Ok(()), "a capped job is not waiting");
    s.gave_back("a1", now);
    assert_eq!(s.may_take("a2", now), Ok(()));
    assert_eq!(s.tenant_usage("acme", now).1, 2, "peak");
}

#[test]
fn the_tenant_with_the_smaller_weighted_share_goes_first() {
    let now = Instant::now();
    let mut s = Shares::default();
    s.set_tenant("small", 1, None);
    s.set_tenant("big", 3, None);
    s.set_job_tenant("s", "small");
    s.set_job_tenant("b", "big");
    for _ in 0..2 {
        s.took("s", now);
    }
    for _ in 0..5 {
        s.took("b", now);
    }
    // big runs 5 of weight 3 (1.67 each), small 2 of weight 1: big is poorer.
    s.refused("b", Refusal::Yield, now);
    assert_eq!(s.may_take("s", now), Err(Refusal::Yield));
    s.took("b", now);
    // 6 ÷ 3 = 2 ÷ 1: equal shares, neither yields to the other.
    assert_eq!(s.may_take("s", now), Ok(()));
    // Within one tenant, the job with fewer tasks goes first.
    s.set_job_tenant("b2", "big");
    s.refused("b2", Refusal::Yield, now);
    assert_eq!(s.may_take("b", now), Err(Refusal::Yield));
    // A waiting mark that is not renewed expires.
    let later = now + WAIT_EXPIRY;
    assert_eq!(s.may_take("b", later), Ok(()));
}

#[test]
fn slot_seconds_are_summed_per_tenant() {
    let t0 = Instant::now();
    let mut s = Shares::default();
    s.set_job_tenant("j", "acme");
    s.took("j", t0);
    s.took("j", t0 + Duration::from_secs(1));
    s.gave_back("j", t0 + Duration::from_secs(3));
    let (running, peak, used) = s.tenant_usage("acme", t0 + Duration::from_secs(4));
    // 1 task for 1 s, 2 for 2 s, 1 for 1 s.
    assert_eq!((running, peak), (1, 2));
    assert!((used - 6.0).abs() < 1e-9, "{used}");
    assert_eq!(s.tenant_usage("nobody", t0), (0, 0, 0.0));
}

/// A job of the simulation: its tenant, its tasks' durations, when it came and what it got.
struct SimJob {
    name: String,
    submitted: Duration,
    pending: VecDeque<Duration>,
    running: u32,
    first_start: Option<Duration>,
    done: Option<Duration>,
}

/// A cluster of `slots` slots, stepping simulated time; jobs ask for slots every step in a
/// fixed order (the first-listed first: the order least kind to later jobs).
struct Sim {
    shares: Shares,
    slots: u32,
    t0: Instant,
    at: Duration,
    tasks: Vec<(Duration, usize)>,
    jobs: Vec<SimJob>,
}

impl Sim {
    fn new(slots: u32) -> Sim {
        let t0 = Instant::now();
        Sim {
            shares: Shares::default(),
            slots,
            t0,
            at: Duration::ZERO,
            tasks: Vec::new(),
            jobs: Vec::new(),
        }
    }

    fn add(
        &mut self,
        name: &str,
        tenant: &str,
        submitted: Duration,
        tasks: Vec<Duration>,
    ) -> usize {
        self.shares.set_job_tenant(name, tenant);
        self.jobs.push(SimJob {
            name: name.into(),
            submitted,
            pending: tasks.into(),
            running: 0,
            first_start: None,
            done: None,
        });
        self.jobs.len() - 1
    }

    fn step(&mut self, dt: Duration) {
        self.at += dt;
        let now = self.t0 + self.at;
        let (ended, still): (Vec<_>, Vec<_>) =
            self.tasks.drain(..).partition(|(end, _)| *end <= self.at);
        self.tasks = still;
        for (_, j) in ended {
            let job = &mut self.jobs[j];
            job.running -= 1;
            self.shares.gave_back(&job.name, now);
            if job.running == 0 && job.pending.is_empty() {
                job.done = Some(self.at);
            }
        }
        for j in 0..self.jobs.len() {
            let job = &mut self.jobs[j];
            if job.submitted > self.at || job.pending.is_empty() {
                continue;
            }
            loop {
                if job.pending.is_empty() {
                    self.shares.stop_waiting(&job.name);
                    break;
                }
                let free = self.slots as usize > self.tasks.len();
                match self.shares.may_take(&job.name, now) {
                    Ok(()) if free => {
                        self.shares.took(&job.name, now);
                        let d = job.pending.pop_front().expect("pending");
                        self.tasks.push((self.at + d, j));
                        job.running += 1;
                        job.first_start.get_or_insert(self.at);
                    }
                    Ok(()) => {
                        self.shares.refused(&job.name, Refusal::Yield, now);
                        break;
                    }
                    Err(why) => {
                        self.shares.refused(&job.name, why, now);
                        break;
                    }
                }
            }
        }
        let running_capped = self.shares.tenant_usage("capped", now).0;
        assert!(running_capped <= 2, "the capped tenant ran {running_capped} tasks");
    }

    fn run_until(&mut self, end: Duration) {
        while self.at < end {
            self.step(Duration::from_millis(100));
        }
    }
}

/// Durations between 8 and 12 s, spread so that tasks do not all end at once.
fn a_tasks(n: usize, seed: u64) -> Vec<Duration> {
    (0..n as u64)
        .map(|i| Duration::from_millis(8000 + (i * 7919 + seed * 104_729) % 4000))
        .collect()
}

#[test]
fn a_small_job_is_not_held_up_by_a_tenant_that_filled_the_cluster() {
    // 8 slots; tenant A has 8 jobs of 200 tasks of ~10 s each; B comes at t = 100 s with one job
    // of 8 tasks of 1 s, which alone on an idle cluster takes 1 s.
    let mut sim = Sim::new(8);
    for i in 0..8 {
        sim.add(&format!("a{i}"), "a", Duration::ZERO, a_tasks(200, i));
    }
    let b = sim.add("b", "b", Duration::from_secs(100), vec![Duration::from_secs(1); 8]);
    sim.run_until(Duration::from_secs(200));
    let job = &sim.jobs[b];
    let waited = job.first_start.expect("b started") - job.submitted;
    let took = job.done.expect("b finished") - job.submitted;
    let a_task = Duration::from_secs(12);
    assert!(waited <= a_task, "b's first task waited {waited:?}");
    assert!(took <= 2 * Duration::from_secs(1) + a_task, "b took {took:?}");
}

#[test]
fn saturating_tenants_share_slot_seconds_by_their_weights_and_caps_hold() {
    let mut sim = Sim::new(8);
    sim.shares.set_tenant("light", 1, None);
    sim.shares.set_tenant("heavy", 3, None);
    sim.shares.set_tenant("capped", 5, Some(2));
    for i in 0..4 {
        sim.add(&format!("l{i}"), "light", Duration::ZERO, a_tasks(500, i));
        sim.add(&format!("h{i}"), "heavy", Duration::ZERO, a_tasks(500, 10 + i));
    }
    sim.run_until(Duration::from_secs(1000));
    let now = sim.t0 + sim.at;
    let light = sim.shares.tenant_usage("light", now).2;
    let heavy = sim.shares.tenant_usage("heavy", now).2;
    let ratio = heavy / light;
    assert!(
        (ratio / 3.0 - 1.0).abs() <= 0.15,
        "heavy ÷ light = {ratio:.2} ({heavy:.0} ÷ {light:.0})"
    );
    // A capped tenant with the biggest weight still runs no more than its cap (checked every
    // step) and gets it, while the others share the rest.
    let mut sim = Sim::new(8);
    sim.shares.set_tenant("capped", 5, Some(2));
    sim.add("c", "capped", Duration::ZERO, a_tasks(500, 1));
    sim.add("o", "other", Duration::ZERO, a_tasks(500, 2));
    sim.run_until(Duration::from_secs(300));
    let now = sim.t0 + sim.at;
    let (_, peak, used) = sim.shares.tenant_usage("capped", now);
    assert_eq!(peak, 2);
    let other = sim.shares.tenant_usage("other", now).2;
    assert!(
        other / used > 2.5,
        "the other tenant used the slots the cap left: {other:.0} vs {used:.0}"
    );
}
