//! Serving a connection without waking the runtime for wake-ups the connection gives itself.
//!
//! hyper's HTTP/1 server hands a request's body to the service through a channel whose two
//! ends live in the connection's own task: when the service asks for the body, the channel
//! wakes the dispatcher, and when the dispatcher has read it, the channel wakes the service,
//! both within one poll of the task. tokio's multi-thread scheduler sees a task woken while
//! it runs, puts it back on its run queue as a yield and wakes an idle worker to come and
//! steal it: a futex wake, and on a machine with more than one core a thread scheduled on
//! another core only to find nothing, or to move the connection there. Every request paid
//! it (two futex calls per request in `strace -c` of a keep-alive client, and the wake-up of
//! the other core on the round trip).
//!
//! [`Repoll`] wraps the connection's future and gives it a waker of its own: a wake-up that
//! comes while the future is being polled only asks for one more poll, done at once, in the
//! same turn of the task; a wake-up that comes at any other time (the socket became readable,
//! a timer fired) wakes the task as before. After [`REPOLLS_MAX`] polls in one turn the task
//! yields to the scheduler, so a connection that keeps waking itself cannot hold a worker.
//! Neither hyper nor tokio offers this, and no crate does it; it is small enough to keep here.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// Polls in one turn of the task at most, the first included; past them the task yields. A
/// request wakes its connection two or three times (the body's channel); hyper itself yields
/// after 16 rounds of its own loop by waking the task, which this also absorbs, so the bound
/// is kept small: one turn runs at most this many of hyper's turns.
pub(crate) const REPOLLS_MAX: usize = 4;

/// A future polled again at once when it wakes itself while being polled.
pub(crate) struct Repoll<F> {
    inner: Pin<Box<F>>,
    shared: Arc<Shared>,
    waker: Waker,
}

struct Shared {
    /// The inner future is being polled.
    polling: AtomicBool,
    /// A wake-up came while it was being polled (or since the last poll began).
    woken: AtomicBool,
    /// The task's own waker, as of the last poll.
    task: AtomicWaker,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Sequentially consistent on both sides: either the poller, after it clears
        // `polling`, sees `woken`, or this thread sees `polling` cleared and wakes the task
        // (possibly needlessly, which is harmless). A wake-up is never lost.
        self.woken.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            self.task.wake();
        }
    }
}

impl<F: Future> Repoll<F> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: F) -> Repoll<F> {
        let shared = Arc::new(Shared {
            polling: AtomicBool::new(false),
            woken: AtomicBool::new(false),
            task: AtomicWaker::new(),
        });
        Repoll {
            inner: Box::pin(inner),
            waker: Waker::from(shared.clone()),
            shared,
        }
    }
}

impl<F: Future> Future for Repoll<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        this.shared.task.register(cx.waker());
        let mut inner_cx = Context::from_waker(&this.waker);
        for _ in 0..REPOLLS_MAX {
            // Anything that woke the future before this poll is seen by the poll itself.
            this.shared.woken.store(false, Ordering::SeqCst);
            this.shared.polling.store(true, Ordering::SeqCst);
            let poll = this.inner.as_mut().poll(&mut inner_cx);
            this.shared.polling.store(false, Ordering::SeqCst);
            match poll {
                Poll::Ready(output) => return Poll::Ready(output),
                Poll::Pending if this.shared.woken.load(Ordering::SeqCst) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
        // Still waking itself: let the scheduler run others first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A waker that counts its wake-ups.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<Counter>, Waker) {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        (counter.clone(), Waker::from(counter))
    }

    /// Wakes itself `times` times, once per poll, then is ready with the polls it took.
    struct SelfWaking {
        times: usize,
        polls: usize,
    }

    impl Future for SelfWaking {
        type Output = usize;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            self.polls += 1;
            if self.polls > self.times {
                return Poll::Ready(self.polls);
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[test]
    fn a_future_that_wakes_itself_is_polled_again_in_the_same_turn() {
        let (counter, waker) = counting();
        let mut future = Repoll::new(SelfWaking { times: 3, polls: 0 });
        let poll = Pin::new(&mut future).poll(&mut Context::from_waker(&waker));
        assert_eq!(poll, Poll::Ready(4));
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            0,
            "the task was not woken"
        );
    }

    #[test]
    fn a_future_that_keeps_waking_itself_yields_after_the_bound() {
        let (counter, waker) = counting();
        let mut future = Repoll::new(SelfWaking {
            times: usize::MAX,
            polls: 0,
        });
        let poll = Pin::new(&mut future).poll(&mut Context::from_waker(&waker));
        assert_eq!(poll, Poll::Pending);
        assert_eq!(future.inner.polls, REPOLLS_MAX);
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "the task yielded");
    }

    #[test]
    fn a_wake_up_between_polls_wakes_the_task_with_its_latest_waker() {
        let (sender, receiver) = tokio::sync::oneshot::channel::<()>();
        let mut waiting = Repoll::new(receiver);
        let (first, first_waker) = counting();
        assert!(Pin::new(&mut waiting)
            .poll(&mut Context::from_waker(&first_waker))
            .is_pending());
        // Polled again, say after a spurious wake-up, with another waker.
        let (second, second_waker) = counting();
        assert!(Pin::new(&mut waiting)
            .poll(&mut Context::from_waker(&second_waker))
            .is_pending());
        // The wake-up comes from another thread while nothing polls.
        std::thread::spawn(move || sender.send(()).unwrap())
            .join()
            .unwrap();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        let poll = Pin::new(&mut waiting).poll(&mut Context::from_waker(&second_waker));
        assert!(matches!(poll, Poll::Ready(Ok(()))));
    }
}
