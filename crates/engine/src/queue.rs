//! The bounded two-lane queue in front of the writer: cancels (the urgent lane) are
//! always taken before new orders, and each lane refuses work at once when full, so a
//! flood of new orders never delays a cancel and never grows memory without bound.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Which lane a job waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Cancels and cancel-alls: served first.
    Urgent,
    /// Everything else.
    Normal,
}

struct Lanes<T> {
    urgent: VecDeque<T>,
    normal: VecDeque<T>,
    closed: bool,
}

/// A bounded multi-producer, single-consumer queue with two priorities.
pub struct TwoLaneQueue<T> {
    lanes: Mutex<Lanes<T>>,
    ready: Condvar,
    capacity: usize,
}

/// Why a job was not queued; the job comes back.
#[derive(Debug)]
pub enum PushError<T> {
    /// The lane is full: shed load.
    Full(T),
    /// The writer has stopped.
    Closed(T),
}

impl<T> TwoLaneQueue<T> {
    /// A queue whose lanes hold at most `capacity` jobs each.
    pub fn new(capacity: usize) -> Self {
        Self {
            lanes: Mutex::new(Lanes {
                urgent: VecDeque::with_capacity(capacity.min(4096)),
                normal: VecDeque::with_capacity(capacity.min(4096)),
                closed: false,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lanes<T>> {
        // A panic while holding this lock cannot leave the deques inconsistent (every
        // operation on them is a single push or pop), so a poisoned lock is still usable.
        self.lanes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `job` in `lane`, or hands it back at once.
    pub fn push(&self, lane: Lane, job: T) -> Result<(), PushError<T>> {
        let mut lanes = self.lock();
        if lanes.closed {
            return Err(PushError::Closed(job));
        }
        let deque = match lane {
            Lane::Urgent => &mut lanes.urgent,
            Lane::Normal => &mut lanes.normal,
        };
        if deque.len() >= self.capacity {
            return Err(PushError::Full(job));
        }
        deque.push_back(job);
        drop(lanes);
        self.ready.notify_one();
        Ok(())
    }

    /// Waits up to `wait` for work, then moves up to `max` jobs into `out`, every urgent
    /// one before any normal one. Returns false once the queue is closed and empty.
    pub fn take(&self, max: usize, wait: Duration, out: &mut Vec<T>) -> bool {
        let mut lanes = self.lock();
        if lanes.urgent.is_empty() && lanes.normal.is_empty() {
            if lanes.closed {
                return false;
            }
            lanes = self
                .ready
                .wait_timeout(lanes, wait)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        while out.len() < max {
            match lanes.urgent.pop_front() {
                Some(job) => out.push(job),
                None => break,
            }
        }
        while out.len() < max {
            match lanes.normal.pop_front() {
                Some(job) => out.push(job),
                None => break,
            }
        }
        !(lanes.closed && out.is_empty() && lanes.urgent.is_empty() && lanes.normal.is_empty())
    }

    /// Refuses new jobs; the consumer drains what is queued, then stops.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Jobs waiting in (urgent, normal).
    pub fn depth(&self) -> (usize, usize) {
        let lanes = self.lock();
        (lanes.urgent.len(), lanes.normal.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urgent_jobs_are_taken_first_and_full_lanes_refuse() {
        let q = TwoLaneQueue::new(2);
        q.push(Lane::Normal, 1).unwrap();
        q.push(Lane::Normal, 2).unwrap();
        assert!(matches!(q.push(Lane::Normal, 3), Err(PushError::Full(3))));
        q.push(Lane::Urgent, 10).unwrap();
        let mut out = Vec::new();
        assert!(q.take(8, Duration::ZERO, &mut out));
        assert_eq!(out, [10, 1, 2]);
        q.close();
        assert!(matches!(q.push(Lane::Urgent, 4), Err(PushError::Closed(4))));
        out.clear();
        assert!(!q.take(8, Duration::ZERO, &mut out));
    }

    #[test]
    fn take_respects_the_batch_limit() {
        let q = TwoLaneQueue::new(10);
        for i in 0..5 {
            q.push(Lane::Normal, i).unwrap();
        }
        let mut out = Vec::new();
        q.take(3, Duration::ZERO, &mut out);
        assert_eq!(out, [0, 1, 2]);
        assert_eq!(q.depth(), (0, 2));
    }
}
