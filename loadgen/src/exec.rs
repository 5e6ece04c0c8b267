//! The task queue of a load thread: async-task tasks and one first-in,
//! first-out queue of the runnable ones, on the thread that spawned them.
//!
//! Why not `async_executor::LocalExecutor`: it is a thread-safe executor
//! behind a local face, so every wake pushes onto a `ConcurrentQueue`
//! (atomic read-modify-writes) and every tick pops from it and notifies.
//! In a closed-loop run against nginx that was about a sixth of the load
//! thread's instructions per request (callgrind). A load thread's wakers
//! are only ever woken on that thread (by its reactor, its sweeper and its
//! tasks), so a plain `VecDeque` in a thread-local does.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;

use async_task::{Runnable, Task};

thread_local! {
    /// The runnable tasks of this thread's [`LocalQueue`].
    static RUNNABLE: RefCell<VecDeque<Runnable>> = const { RefCell::new(VecDeque::new()) };
}

/// Pushes a woken task onto the queue of the thread it was woken on.
///
/// Every waker of a load thread is woken on that thread. Were one woken on
/// another thread, the task would land in that thread's queue, and
/// async-task panics when a local task runs on a thread other than its own:
/// a loud failure, never a silent one.
fn schedule(runnable: Runnable) {
    RUNNABLE.with(|q| q.borrow_mut().push_back(runnable));
}

/// Runs tasks spawned on it, on the thread that made it. One per thread at a
/// time: the queue is the thread's.
pub(crate) struct LocalQueue {
    /// Neither `Send` nor `Sync`: the tasks are the thread's.
    _local: PhantomData<*const ()>,
}

impl LocalQueue {
    pub(crate) fn new() -> LocalQueue {
        RUNNABLE.with(|q| assert!(q.borrow().is_empty(), "one LocalQueue per thread at a time"));
        LocalQueue {
            _local: PhantomData,
        }
    }

    /// Spawns `future`; it first runs at the next [`LocalQueue::try_tick`].
    /// Dropping the returned task cancels it.
    pub(crate) fn spawn<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (runnable, task) = async_task::spawn_local(future, schedule);
        runnable.schedule();
        task
    }

    /// Runs the oldest runnable task, if there is one.
    pub(crate) fn try_tick(&self) -> bool {
        // The borrow ends before the task runs: running it may wake others.
        let next = RUNNABLE.with(|q| q.borrow_mut().pop_front());
        match next {
            Some(runnable) => {
                runnable.run();
                true
            }
            None => false,
        }
    }
}

impl Drop for LocalQueue {
    /// Drops every task still queued. Dropping a runnable drops its future,
    /// and dropping a future may cancel other tasks, which queues them in
    /// turn, so this drains until nothing is left.
    fn drop(&mut self) {
        while let Some(runnable) = RUNNABLE.with(|q| q.borrow_mut().pop_front()) {
            drop(runnable);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn tasks_run_in_the_order_they_were_woken() {
        let q = LocalQueue::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..3 {
            let log = log.clone();
            tasks.push(q.spawn(async move {
                log.borrow_mut().push(i);
                futures_lite::future::yield_now().await;
                log.borrow_mut().push(10 + i);
            }));
        }
        while q.try_tick() {}
        assert_eq!(*log.borrow(), [0, 1, 2, 10, 11, 12]);
        assert!(tasks.iter().all(|t| t.is_finished()));
    }

    /// The load threads rely on this: a slot's guard, dropped with its
    /// unfinished task, records the request as cancelled.
    #[test]
    fn dropping_the_queue_drops_unfinished_futures() {
        struct Flag(Rc<Cell<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let dropped = Rc::new(Cell::new(false));
        let q = LocalQueue::new();
        let flag = Flag(dropped.clone());
        let pending = q.spawn(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
        });
        // An outer task holding the inner one's handle, as `run` does.
        let outer = q.spawn(pending);
        while q.try_tick() {}
        assert!(!dropped.get());
        drop(outer);
        drop(q);
        assert!(dropped.get());
        // And the thread's queue is free for the next one.
        let _again = LocalQueue::new();
    }
}
