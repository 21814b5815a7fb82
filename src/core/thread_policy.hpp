#pragma once
// Scheduling policy for helper threads that must not take the core from an event loop.

namespace chatorbit {

/// Moves the calling thread to SCHED_BATCH (Linux). A batch thread that is woken does
/// not preempt the running event loop: it runs when the loop waits for I/O or at the
/// next scheduler tick. On a core shared with a loop this turns a ping-pong of context
/// switches per hand-off into a few long turns, so work queued meanwhile is taken in
/// larger batches. Best effort: returns false if the kernel refused.
bool run_as_batch_thread();

}  // namespace chatorbit
